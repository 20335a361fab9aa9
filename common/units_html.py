"""A self-contained HTML page that colours a text by one unit's value.

The page holds its data as JSON and draws the text with a few lines of
JavaScript: one ``<span class="tok">`` per token, its background red for a
positive value and blue for a negative one (white at 0, full colour at the
unit's largest magnitude over the text), or, for the surprisal view, white
to orange by bits; the text is white on the darker colours (class
``dark``), black on the others. A picker chooses the unit; hovering over a
token (or clicking it, to pin it) shows its value, its surprisal and the
model's top guesses for the next token. Nothing is loaded from the
network: no external scripts, styles or fonts.

The fragment of the page's address selects a view and pins a position, so
a link (or a headless browser) can open the page on one unit:
``units.html#unit=c0:17&pos=120`` (``unit=surprisal`` for the surprisal);
the pinned position is scrolled into view.
"""

import html
import json

from common.serialization import atomic_write

SURPRISAL = "surprisal"
# In every page's head: a page there already is one of these, which a new one
# may replace (common.cli.output_flags_problem), unlike a page of the user's.
GENERATOR = "rnnlab units page"
# What tells a page apart: that, or (in pages written before it) the end of
# the page's script, there since its first version.
PAGE_MARKS = (f'<meta name="generator" content="{GENERATOR}">',
              "picker.addEventListener('change', draw);")

_STYLE = """
body { font-family: sans-serif; margin: 1em 2em; color: #222; }
#text { font-family: monospace; font-size: 15px; line-height: 1.6; white-space: pre-wrap;
        overflow-wrap: anywhere;  /* a long token wraps in a narrow window */
        border: 1px solid #ccc; padding: 0.6em; }
.tok { cursor: pointer; color: #000; }
.tok.dark { color: #fff; }
.tok.pinned { outline: 2px solid #000; }
#info { font-family: monospace; min-height: 7.5em; margin: 0.6em 0; padding: 0.4em;
        background: #f4f4f4; white-space: pre-wrap; overflow-wrap: anywhere;
        position: sticky; top: 0; z-index: 1; }  /* in view wherever the text is scrolled */
.legend { font-size: 90%; color: #555; }
"""

_SCRIPT = r"""
const data = JSON.parse(document.getElementById('data').textContent);
const picker = document.getElementById('unit');
const info = document.getElementById('info');
const text = document.getElementById('text');
const spans = [];
let pinned = -1;

function shown(tok) {
  if (data.level === 'char') return tok === '\n' ? '\u21b5\n' : tok;
  return tok === '<eos>' ? '<eos>\n' : tok;
}

data.tokens.forEach((tok, t) => {
  if (data.level !== 'char' && t > 0 && data.tokens[t - 1] !== '<eos>') {
    text.appendChild(document.createTextNode(' '));
  }
  const s = document.createElement('span');
  s.className = 'tok';
  s.dataset.t = t;
  s.textContent = shown(tok);
  s.addEventListener('mouseenter', () => { if (pinned < 0) describe(t); });
  s.addEventListener('click', () => pin(pinned === t ? -1 : t));
  text.appendChild(s);
  spans.push(s);
});

function view() {
  const v = picker.value;
  return v === 'surprisal' ? {name: v, values: data.bits, surprisal: true}
                           : data.units[Number(v)];
}

function colour(x, scale, surprisal) {
  if (x === null || !isFinite(x)) return [255, 255, 255];
  const a = Math.min(Math.abs(x) / scale, 1);
  const fade = Math.round(255 * (1 - a));
  if (surprisal) return [255, Math.round(255 - 120 * a), fade];
  return x >= 0 ? [255, fade, fade] : [fade, fade, 255];
}

// WCAG 2's relative luminance of [r, g, b] (0..255): 0 black, 1 white.
function luminance(rgb) {
  const [r, g, b] = rgb.map(c => {
    c /= 255;
    return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

// White text below luminance 0.179, black above: the better of the two has a
// contrast of at least 4.58:1 (dark text on full blue would have 1.9:1).
function paint(s, rgb) {
  s.style.backgroundColor = `rgb(${rgb.join(', ')})`;
  s.classList.toggle('dark', luminance(rgb) < 0.179);
}

function draw() {
  const u = view();
  // (A loop, not Math.max(...values): a call takes at most some 100,000 arguments.)
  let scale = 1e-12;
  for (const x of u.values) {
    if (x !== null && isFinite(x)) scale = Math.max(scale, Math.abs(x));
  }
  spans.forEach((s, t) => paint(s, colour(u.values[t], scale, u.surprisal)));
  document.getElementById('legend').textContent = u.surprisal
    ? `white: 0 bits, orange: ${scale.toFixed(2)} bits or more`
    : `blue: ${(-scale).toFixed(3)}, white: 0, red: ${scale.toFixed(3)}`;
  document.body.dataset.view = u.name;
  describe(pinned >= 0 ? pinned : -1);
}

function fmt(x, digits) { return x === null ? '-' : Number(x).toFixed(digits); }

function describe(t) {
  if (t < 0) { info.textContent = 'hover over a token (click to pin it)'; return; }
  const u = view();
  const lines = [`position ${t}: ${JSON.stringify(data.tokens[t])}`];
  if (!u.surprisal) lines.push(`${u.name} = ${fmt(u.values[t], 4)}`);
  if (data.bits) {
    lines.push(t === 0 ? 'surprisal: - (the first token is context)'
                       : `surprisal: ${fmt(data.bits[t], 2)} bits`);
  }
  if (data.guesses) {
    // A no-break space: a narrow window wraps between guesses, not inside one.
    const g = data.guesses[t].map(([tok, p]) => `${JSON.stringify(tok)}\u00a0${p.toFixed(3)}`);
    lines.push('next-token guesses: ' + g.join('  '));
  }
  info.textContent = lines.join('\n');
}

function pin(t) {
  if (pinned >= 0) spans[pinned].classList.remove('pinned');
  pinned = t;
  if (t >= 0) spans[t].classList.add('pinned');
  describe(t);
}

function fromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const want = params.get('unit');
  if (want !== null) {
    const i = data.units.findIndex(u => u.name === want);
    const value = want === 'surprisal' && data.bits ? 'surprisal' : (i >= 0 ? String(i) : null);
    if (value !== null && value !== picker.value) {
      picker.value = value;
      picker.dispatchEvent(new Event('change'));
    }
  }
  const pos = Number(params.get('pos'));
  if (params.has('pos') && Number.isInteger(pos) && pos >= 0 && pos < spans.length) {
    pin(pos);
    // A link to a position far down a long text opens there, not at the top.
    spans[pos].scrollIntoView({block: 'center'});
  }
}

picker.addEventListener('change', draw);
window.addEventListener('hashchange', fromFragment);
draw();
fromFragment();
"""


def units_page(tokens: list, level: str, units: list, guesses: list | None = None,
               bits: list | None = None, title: str = "units over text",
               notes: str = "") -> str:
    """The page as a string.

    Args:
        tokens: the ``T`` tokens of the text (strings).
        level: ``'char'`` (tokens drawn as they are, a newline as a line
            break) or ``'word'`` (tokens separated by spaces, ``<eos>`` ends a line).
        units: ``[(name, label, values), ...]``: ``values`` has ``T`` numbers
            (the unit after reading each token); ``label`` is shown in the picker.
        guesses: for each position, ``[(token, probability), ...]``: the
            model's most likely next tokens.
        bits: surprisal of each token in bits (``None`` or NaN for the first,
            which is not predicted); adds a "surprisal" view.
        title: the page's heading; notes: a line of text under it.
    """
    T = len(tokens)
    if level not in ("char", "word"):
        raise ValueError(f"level must be 'char' or 'word', got {level!r}")
    if not units and bits is None:
        raise ValueError("nothing to show: give at least one unit or the surprisal")
    for name, _, values in units:
        if len(values) != T:
            raise ValueError(f"unit {name!r} has {len(values)} values for {T} tokens")
    for what, seq in (("guesses", guesses), ("bits", bits)):
        if seq is not None and len(seq) != T:
            raise ValueError(f"{what} has {len(seq)} entries for {T} tokens")
    data = {
        "level": level,
        "tokens": [str(t) for t in tokens],
        "units": [{"name": name, "values": [_num(v, 5) for v in values]}
                  for name, _, values in units],
        "guesses": None if guesses is None else [[[str(tok), round(float(p), 4)]
                                                  for tok, p in g] for g in guesses],
        "bits": None if bits is None else [_num(b, 3) for b in bits],
    }
    options = [f'<option value="{i}">{html.escape(label)}</option>'
               for i, (_, label, _) in enumerate(units)]
    if bits is not None:
        options.append(f'<option value="{SURPRISAL}">surprisal (bits)</option>')
    # No "<" at all inside the script element: "</script" would end it, and
    # "<!--" then "<script" would make the parser skip the real end tag (the
    # page's code then never runs). JSON reads "\u003c" as "<".
    payload = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # (A phone lays out a page without it some 980 px wide, then shrinks it.)
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="{GENERATOR}">',  # (replaced freely: see cli)
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h2>{html.escape(title)}</h2>",
        f'<p class="legend">{html.escape(notes)}</p>' if notes else "",
        '<label>view: <select id="unit">', *options, "</select></label>",
        ' <span class="legend" id="legend"></span>',
        '<div id="info"></div>',
        '<div id="text"></div>',
        f'<script type="application/json" id="data">{payload}</script>',
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
        "",
    ])


def write_units_page(path, *args, **kwargs) -> None:
    """Write :func:`units_page` to ``path`` (UTF-8, atomically)."""
    page = units_page(*args, **kwargs)
    # A title from a file name may hold an undecodable byte (a lone surrogate,
    # as Python reads such names), which UTF-8 cannot hold: written escaped.
    atomic_write(path, lambda f: f.write(page.encode("utf-8", "backslashreplace")))


def _num(x, digits):
    x = None if x is None else float(x)
    return None if x is None or x != x or x in (float("inf"), float("-inf")) else round(x, digits)
