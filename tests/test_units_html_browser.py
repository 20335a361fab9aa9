"""The units-over-text page, drawn by a real browser (headless Chromium).

The page builds its spans and colours with JavaScript, so these tests read
what the browser rendered (``--dump-dom``), not the HTML string. Chromium
comes from the operating system's packages; ``.ci/run`` installs it when
missing (``apt-get install chromium`` on Debian and Ubuntu).
"""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from common.units_html import write_units_page

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium():
    path = os.environ.get("RNNLAB_CHROMIUM") or next(
        (p for p in map(shutil.which, CANDIDATES) if p), None)
    if not path:
        pytest.fail("headless Chromium is needed for this test and was not found: install it "
                    "with `apt-get install chromium` (Debian/Ubuntu; .ci/run does this), or "
                    "name the browser in RNNLAB_CHROMIUM")
    return path


def rendered(page, fragment, tmp_path):
    """The document after the page's scripts ran, opened at ``page#fragment``."""
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}",
           # No network: every host name fails to resolve.
           "--host-resolver-rules=MAP * ~NOTFOUND",
           "--dump-dom", f"{page.as_uri()}#{fragment}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def token_colours(dom):
    """``[(t, (r, g, b)), ...]`` of the drawn token spans, in order."""
    spans = re.findall(r'<span class="tok[^"]*" data-t="(\d+)" '
                       r'style="background-color: rgb\((\d+), (\d+), (\d+)\);">', dom)
    return [(int(t), tuple(int(c) for c in rgb)) for t, *rgb in spans]


TEXT = 'print("hi", (a))\nx = 1\n'


@pytest.fixture
def page(tmp_path):
    tokens = list(TEXT)
    T = len(tokens)
    wave = np.sin(np.arange(T) / 2.0)
    bits = [None] + list(np.linspace(0.5, 6.0, T - 1))
    guesses = [[("x", 0.5), ("y", 0.2), ("(", 0.1), ("\n", 0.05), ('"', 0.01)]] * T
    path = tmp_path / "units.html"
    write_units_page(path, tokens, "char",
                     [("h0:3", "h0:3 (r = 0.9 with inside quotes)", wave),
                      ("c0:7", "c0:7", -wave)],
                     guesses=guesses, bits=bits, title="test page")
    assert "http" not in path.read_text(encoding="utf-8")  # nothing to fetch
    return path, wave


def test_browser_draws_every_token_and_the_picker_changes_the_colours(page, tmp_path):
    path, wave = page
    first = rendered(path, "unit=h0:3", tmp_path)
    second = rendered(path, "unit=c0:7&pos=5", tmp_path)
    a, b = token_colours(first), token_colours(second)
    assert [t for t, _ in a] == list(range(len(TEXT)))  # one span per character, newlines too
    assert [t for t, _ in b] == list(range(len(TEXT)))
    assert 'data-view="h0:3"' in first and 'data-view="c0:7"' in second
    # Red for positive values, blue for negative; the second unit is the first negated.
    for (t, (r, _, bl)), (_, (r2, _, bl2)) in zip(a, b, strict=True):
        if wave[t] > 0.2:
            assert r > bl and bl2 > r2, (t, wave[t])
        elif wave[t] < -0.2:
            assert bl > r and r2 > bl2, (t, wave[t])
    assert sum(ca != cb for (_, ca), (_, cb) in zip(a, b, strict=True)) > len(TEXT) // 2
    # The pinned position shows its value and the model's guesses.
    info = re.search(r'<div id="info">(.*?)</div>', second, re.S).group(1)
    assert "position 5" in info and f"c0:7 = {-wave[5]:.4f}" in info
    assert "next-token guesses: \"x\"&nbsp;0.500  \"y\"&nbsp;0.200" in info


def test_browser_surprisal_view(page, tmp_path):
    path, _ = page
    colours = dict(token_colours(rendered(path, "unit=surprisal", tmp_path)))
    assert len(colours) == len(TEXT)
    assert colours[0] == (255, 255, 255)  # the first token is context: no surprisal
    blue = [colours[t][2] for t in range(1, len(TEXT))]
    assert blue == sorted(blue, reverse=True) and blue[-1] == 0  # more bits, deeper orange


def test_browser_word_level_page(tmp_path):
    tokens = "the cat sat <eos> a dog ran".split()
    path = tmp_path / "words.html"
    write_units_page(path, tokens, "word", [("h0:0", "h0:0", np.linspace(-1, 1, 7))])
    dom = rendered(path, "", tmp_path)
    colours = token_colours(dom)
    assert [t for t, _ in colours] == list(range(7))
    assert re.search(r'data-t="2"[^>]*>sat</span> <span', dom)  # words separated by spaces
    assert colours[0][1][2] == 255 and colours[6][1][0] == 255  # blue first, red last


def probed(path, js):
    """A copy of the page with ``js`` run after the page's own code (which has
    drawn the text and read the fragment by then): what it writes into
    ``document.body.dataset`` comes back in the dumped document."""
    copy = path.with_name("probed_" + path.name)
    copy.write_text(path.read_text("utf-8").replace("</body>", f"<script>{js}</script></body>"),
                    encoding="utf-8")
    return copy


def test_browser_page_fits_a_phone_wide_window(tmp_path):
    # (At 360 px the guesses line and a long token ran out of their boxes, and the
    # page scrolled sideways.)
    tokens = list("ab ") * 10 + ["very_long_token_that_goes_on_and_on_" * 3] + list("ab\n")
    T = len(tokens)
    guesses = [[("alpha_beta_gamma", 0.5), ("delta_epsilon", 0.2), ("zeta_eta_theta", 0.1),
                ("iota_kappa", 0.05), ("lambda_mu", 0.01)]] * T
    path = tmp_path / "narrow.html"
    write_units_page(path, tokens, "char", [("h0:0", "h0:0", np.linspace(-1, 1, T))],
                     guesses=guesses, bits=[None] + [1.0] * (T - 1))
    js = ("document.body.dataset.wide = document.documentElement.scrollWidth > innerWidth;"
          "const t = document.getElementById('text');"
          "document.body.dataset.spill = t.scrollWidth > t.clientWidth;"
          # A guess and its probability stay on one line (a no-break space).
          "document.body.dataset.pair = document.getElementById('info').textContent"
          "  .includes('\"alpha_beta_gamma\"\\u00a00.500');")
    page = probed(path, js)
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=360,800",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--dump-dom", f"{page.as_uri()}#pos=31"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'data-wide="false"' in out.stdout and 'data-spill="false"' in out.stdout
    assert 'data-pair="true"' in out.stdout
    assert '<meta name="viewport" content="width=device-width' in out.stdout  # (phones)


def test_browser_draws_tokens_that_open_a_comment_and_a_script(tmp_path):
    # "<!--" then "<script" in the data used to swallow the page's code: a blank page.
    tokens = ["<!--", "<script>", "a", "</script>", "-->", "b"]
    path = tmp_path / "comment.html"
    write_units_page(path, tokens, "word", [("h0:0", "h0:0", np.linspace(-1, 1, 6))])
    dom = rendered(path, "pos=1", tmp_path)
    assert [t for t, _ in token_colours(dom)] == list(range(6))
    assert 'position 1: "&lt;script&gt;"' in dom


def test_browser_text_on_the_strongest_colours_keeps_a_contrast_of_4_5(page, tmp_path):
    path, wave = page
    js = ("document.body.dataset.fg = [...document.querySelectorAll('.tok')]"
          ".map(s => getComputedStyle(s).color).join(';');")
    dom = rendered(probed(path, js), "unit=h0:3", tmp_path)
    background = [rgb for _, rgb in token_colours(dom)]
    text = [tuple(int(c) for c in re.findall(r"\d+", fg))
            for fg in re.search(r'data-fg="([^"]*)"', dom).group(1).split(";")]

    def luminance(rgb):
        c = np.array(rgb) / 255
        c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        return c @ [0.2126, 0.7152, 0.0722]

    for t, (bg, fg) in enumerate(zip(background, text, strict=True)):
        light, dark = sorted((luminance(bg), luminance(fg)), reverse=True)
        assert (light + 0.05) / (dark + 0.05) >= 4.5, (t, bg, fg)
    darkest = int(np.argmin(wave))  # full blue: white text
    assert background[darkest] == (0, 0, 255) and text[darkest] == (255, 255, 255)


def test_browser_scrolls_a_pinned_position_into_view(tmp_path):
    tokens = ("w <eos> " * 1500).split()  # 1,500 lines: the end is far below the window
    path = tmp_path / "long.html"
    write_units_page(path, tokens, "word", [("h0:0", "h0:0", np.zeros(len(tokens)))])
    js = ("const r = document.querySelector('.tok.pinned').getBoundingClientRect();"
          "document.body.dataset.seen = r.top >= 0 && r.bottom <= innerHeight;")
    dom = rendered(probed(path, js), "pos=2900", tmp_path)
    assert 'data-seen="true"' in dom


def test_browser_colours_a_text_longer_than_a_call_takes_arguments(tmp_path):
    """The scale was Math.max(...values): one argument per token overflows
    the browser's stack past about 125,000 tokens, and the page stayed
    uncoloured."""
    T = 130_002
    path = tmp_path / "long.html"
    values = np.tile(np.linspace(-0.3, 0.3, 7), T // 7 + 1)[:T]
    write_units_page(path, list("abc") * (T // 3), "char", [("h0:0", "h0:0", values)])
    dom = rendered(path, "", tmp_path)
    assert 'id="legend">blue: -0.300, white: 0, red: 0.300<' in dom
    colours = token_colours(dom)
    assert len(colours) == T and colours[0][1][2] == 255  # the first, -0.3: blue
