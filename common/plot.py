"""The training curve of a trainer, as a matplotlib ``Figure``.

Perplexity (or loss) every ``eval_interval`` iterations on a log axis, the
validation figure at the end of every epoch, thin lines at the epoch
boundaries, the best validation epoch and every change of the learning rate
marked, and the run in the title.

Also what every rnnlab figure shares: :func:`save_figure` (atomic writes),
:func:`plot_format`, the :data:`MONOSPACE` font list, :func:`text_fonts`
(the installed fonts that hold a text's characters) and
:func:`readable_text_colour` (text on a coloured cell).
"""

import contextlib
import logging
import math
import numbers
import os
import sys
import warnings

import numpy as np

from common.serialization import atomic_write, check_target

# Monospace text (characters of a text, tick labels of tokens) with a fallback:
# DejaVu Sans Mono has no Hebrew, Arabic or emoji, DejaVu Sans (matplotlib's
# own font, always there) has them; matplotlib takes a missing glyph from
# the next family of the list rather than drawing an empty box.
MONOSPACE = ("monospace", "DejaVu Sans")
# Other text: matplotlib's default family.
SANS = ("sans-serif",)
# Epoch boundaries are drawn only when there are few enough to tell apart.
MAX_EPOCH_LINES = 40
# Learning-rate changes are marked one by one only when their rotated labels
# cannot pile up; more are summed up in one label.
MAX_LR_MARKS = 12
# A title's characters that fit over the training plot (7 inches wide, 10
# points, over axes right of the figure's centre); longer, its middle is cut
# (its end names the sizes). Measured with ordinary letters: a run of wide
# ones ("mmm") may still reach the edge.
MAX_TITLE = 84
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg", ".jpg": "jpg", ".jpeg": "jpg",
           ".eps": "eps", ".ps": "ps"}


def plot_format(path) -> str:
    """The file format ``path``'s suffix names (``ValueError`` for others)."""
    suffix = os.path.splitext(os.fsdecode(path))[1].lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot tell the plot format from {os.fsdecode(path)!r}: end the name "
                         f"with one of {', '.join(sorted(FORMATS))}")
    return FORMATS[suffix]


def save_figure(fig, path, dpi: int = 100) -> None:
    """Write ``fig`` to ``path`` in the format its suffix names, atomically: a
    full disk or Ctrl-C while drawing leaves the old file as it was."""
    with quiet_glyphs():
        atomic_write(path, lambda f: fig.savefig(f, format=plot_format(path), dpi=dpi))


@contextlib.contextmanager
def quiet_glyphs():
    """``with quiet_glyphs():`` (or ``@quiet_glyphs()``) lay out and draw a
    figure without matplotlib's warning for each glyph that no font of a
    text has: rnnlab's figures take their texts' families from
    :func:`text_fonts`, which has said once which characters no installed
    font holds."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from",
                                category=UserWarning)
        yield


def text_fonts(texts, base=MONOSPACE) -> tuple:
    """The font families to draw ``texts`` (strings) with: ``base``, then the
    installed fonts that hold the characters ``base``'s fonts lack.

    DejaVu, the font matplotlib brings, has no Chinese, Japanese, Korean or
    Thai; a heat map of such text drew every character as an empty box,
    with one matplotlib warning a character. Matplotlib takes each glyph
    from the first family of the list that has it, so the fonts that hold
    the rest (Noto Sans CJK, say, where it is installed) are added, in
    name order (broad families such as Noto first), those that hold some of
    what is still missing, until nothing is. Characters that no installed
    font holds stay boxes, with a ``UserWarning`` that names them (the
    first time in a process: a figure draws many texts).
    """
    from matplotlib import font_manager

    chars = {c for text in texts for c in str(text) if c.isprintable() and not c.isspace()}
    held = set()
    for family in base:
        # (A list: one string alone would be read as a fontconfig pattern.)
        held |= _charmap(font_manager.findfont(font_manager.FontProperties(family=[family])))
    # (A family's bold or italic file may hold more, but its upright text is drawn.)
    missing = {c for c in chars if ord(c) not in held}
    families = list(base)
    if missing:
        names = sorted({entry.name for entry in font_manager.fontManager.ttflist
                        if not entry.name.startswith("Last Resort")},
                       key=lambda name: (not name.startswith(_BROAD), name))
        codes = {ord(c) for c in missing}
        # findfont logs a line for each family without an upright normal face.
        log = logging.getLogger("matplotlib.font_manager")
        level = log.level
        log.setLevel(logging.ERROR)
        try:
            for name in names[:_MAX_FONTS]:
                if not codes:
                    break
                if name in families:
                    continue
                try:  # the file matplotlib draws the family's upright text from
                    fname = font_manager.findfont(font_manager.FontProperties(family=[name]),
                                                  fallback_to_default=False)
                except ValueError:
                    continue
                has = codes & _charmap(fname)
                if has:
                    families.append(name)
                    codes -= has
        finally:
            log.setLevel(level)
        missing = {c for c in missing if ord(c) in codes}
    if missing and not _warned_of_missing_glyphs:
        _warned_of_missing_glyphs.append(True)
        shown = "".join(sorted(missing)[:20]) + (" ..." if len(missing) > 20 else "")
        warnings.warn(f"no installed font holds {len(missing)} of the characters drawn "
                      f"({shown}): they show as boxes; install a font that has them (for "
                      f"Chinese, Japanese and Korean: Noto Sans CJK)", UserWarning,
                      stacklevel=2)
    return tuple(families)


_charmaps: dict = {}  # font file -> the code points it holds (read once a process)
_warned_of_missing_glyphs: list = []  # [True] once text_fonts has warned
# Families that hold many scripts, tried first; at most _MAX_FONTS are read (a
# few ms each: a desktop may have thousands). matplotlib's "Last Resort" font
# holds every code point, as a box: never a fallback.
_BROAD = ("Noto Sans CJK", "Noto Sans", "Source Han Sans", "Droid Sans Fallback", "WenQuanYi",
          "Arial Unicode", "Microsoft YaHei", "PingFang", "Hiragino", "Malgun Gothic", "Unifont")
_MAX_FONTS = 400


def _charmap(fname: str) -> set:
    """The code points the font file ``fname`` holds (none where it cannot be read)."""
    if fname not in _charmaps:
        from matplotlib.ft2font import FT2Font

        try:
            _charmaps[fname] = set(FT2Font(fname).get_charmap())
        except (OSError, RuntimeError, ValueError):
            _charmaps[fname] = set()
    return _charmaps[fname]


def relative_luminance(rgb) -> float:
    """WCAG 2's relative luminance of an sRGB colour given as three numbers in
    0..1: 0 for black, 1 for white."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
              for c in map(float, rgb)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def readable_text_colour(rgb) -> str:
    """``'white'`` or ``'black'``: the one that reads better on the background
    ``rgb`` (three numbers in 0..1).

    Below a luminance of 0.179 white has the larger contrast ratio
    ``(L1 + 0.05) / (L2 + 0.05)``; the better of the two is always at least
    4.58:1, above WCAG's 4.5:1 for text (black on full blue is 2.4:1, white 8.6:1).
    """
    return "white" if relative_luminance(rgb) < 0.179 else "black"


def plot_training(trainer, ylim=None, path=None, logy: bool = True):
    """Draw ``trainer``'s curves; return the ``Figure``.

    With ``path``: also written there, in the format its suffix names
    (``.png``, ``.pdf``, ``.svg`` ...). Without: in Jupyter the returned
    Figure shows inline; with a display it is shown in a window; with
    neither it is written to ``ppl.png``.

    ``ylim``: the top, or ``(bottom, top)``. On the log axis (``logy``) a
    bottom of 0 or less, as in the book's ``ylim=(0, 500)``, cannot be shown:
    it is ignored, with a ``UserWarning``.
    """
    import matplotlib

    ylim = _checked_ylim(ylim)
    _check_something_to_draw(trainer)
    if path is None and not _in_notebook(matplotlib) and not _can_show(matplotlib):
        path = "ppl.png"
    if path is not None:
        # A name without a format, a folder, a file on the way: refused before drawing.
        plot_format(path)
        check_target(path)
    window = path is None and not _in_notebook(matplotlib)
    if window:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(7.0, 4.4))
    else:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7.0, 4.4))
    ax = fig.add_subplot()
    legend = _draw(ax, trainer)
    # Nothing recorded yet (eval_interval longer than the iterations trained):
    # matplotlib cannot put empty lines on a log axis.
    log_axis = logy and _recorded(trainer)
    if log_axis:
        ax.set_yscale("log")
        # 40, 20, 6 rather than 4x10^1, 2x10^1, 6x10^0; the log formatter still
        # chooses which minor ticks get a label (none over several decades).
        ax.yaxis.set_major_formatter(plain_log_formatter())
        ax.yaxis.set_minor_formatter(plain_log_formatter())
    if ylim is not None:
        low, high = ylim
        if log_axis and low is not None and low <= 0:
            # The book's ylim=(0, top): a log axis keeps its own bottom.
            warnings.warn(f"ylim: the lower limit {float(low):g} cannot be shown on a log "
                          "axis and is ignored; pass logy=False for the book's linear axis",
                          UserWarning, stacklevel=3)
            low = None
        ax.set_ylim(bottom=low, top=high)
    # The legend goes under the axes, where it cannot cover a curve or the
    # learning-rate labels at the top of the axes: leave it a band there.
    with quiet_glyphs():
        fig.tight_layout(rect=(0, 0.07, 1, 1) if legend else None)
    if window:
        import matplotlib.pyplot as plt

        plt.show()
    elif path is not None:
        save_figure(fig, path)
    return fig


def plain_log_formatter():
    """A tick formatter for a log axis that writes plain numbers: ``40``,
    ``2.5``, ``0.3``, not ``4x10^1``.

    :class:`matplotlib.ticker.LogFormatter` still decides which ticks get a
    label (the others get ``''``: no minor labels over several decades, where
    they would overlap); only the label's text changes.
    """
    # matplotlib is imported only when a figure is drawn (common.cli imports this module).
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        def __call__(self, x, pos=None):
            label = super().__call__(x, pos)
            return label and f"{x:.12g}"

    return PlainLogFormatter(labelOnlyBase=False)


def _checked_ylim(ylim):
    """``(low, high)`` from the book's ``ylim`` (a top, or a pair), or None; a
    ``TypeError`` that says how to fix anything else."""
    if ylim is None:
        return None
    if isinstance(ylim, (str, bytes, os.PathLike)):  # trainer.plot("ppl.png")
        raise TypeError(f"ylim {ylim!r} looks like a file name; pass it as path: "
                        f"trainer.plot(path={ylim!r})")
    pair = tuple(ylim) if np.iterable(ylim) else (None, ylim)
    if len(pair) != 2 or not all(v is None or isinstance(v, numbers.Real) for v in pair):
        raise TypeError(f"ylim must be a number (the top) or a pair (bottom, top), got {ylim!r}")
    return pair


def _recorded(trainer):
    """Whether ``trainer`` has a point to draw: a training (of an interval or
    of an epoch) or a validation figure."""
    return bool(trainer.figure_list or trainer.history.get(f"val_{trainer.figure}")
                or _finite(trainer.history.get(f"train_{trainer.figure}", [])))


def _finite(values) -> bool:
    """Whether ``values`` hold a finite number (an epoch whose batches were all
    skipped records NaN: no point to draw)."""
    return any(math.isfinite(v) for v in values)


def has_something_to_draw(trainer) -> bool:
    """Whether ``trainer`` has trained or recorded anything a plot would show
    (a stop before the first iteration of a first fit has not)."""
    return bool(_recorded(trainer) or trainer.epoch or trainer.iteration)


def _check_something_to_draw(trainer):
    """Before any fit there is nothing to draw: say so rather than write an empty figure."""
    if not has_something_to_draw(trainer):
        name = "perplexity" if trainer.figure == "ppl" else "loss"
        raise ValueError(f"nothing to plot yet: call fit() first (it records the training "
                         f"{name})")


def _note_when_empty(ax, trainer):
    """A run stopped before its first recorded point still gets its figure (an
    interrupted run writes one), saying why the axes are empty."""
    if _recorded(trainer):
        return
    name = "perplexity" if trainer.figure == "ppl" else "loss"
    every = (f"every eval_interval = {trainer.eval_interval} iterations"
             if trainer.eval_interval is not None else
             "only with an eval_interval (None: never)")
    ax.text(0.5, 0.5, f"no training {name} recorded yet:\nfit() records it {every}",
            transform=ax.transAxes, ha="center", va="center", color="0.4")


def _draw(ax, trainer):
    """Draw the curves into ``ax``; return the legend (under the axes) or None."""
    name = "perplexity" if trainer.figure == "ppl" else "loss"
    per_epoch = trainer.iters_per_epoch or 1
    values = trainer.figure_list
    if values:  # an empty line would still get a "train" entry in the legend
        ax.plot(_figure_positions(trainer), values, label="train", lw=1.2)
    ends = _epoch_ends(trainer)  # ends[e - 1]: where epoch e ended
    train = trainer.history.get(f"train_{trainer.figure}", [])
    if not values and _finite(train):  # (a run shorter than eval_interval: its epochs')
        ax.plot(ends[:len(train)], train, "s-", ms=3, lw=1.2, label="train (epoch means)")
    val = trainer.history.get(f"val_{trainer.figure}", [])
    if val:
        ax.plot(ends[:len(val)], val, "o-", ms=3, label="validation")
        if trainer.best_epoch is not None and trainer.best_epoch <= len(val):
            best = val[trainer.best_epoch - 1]
            ax.plot([ends[trainer.best_epoch - 1]], [best], "*", ms=14, color="tab:red",
                    label=f"best validation: epoch {trainer.best_epoch} ({best:.2f})")
    if 1 < len(ends) <= MAX_EPOCH_LINES:
        for end in ends[:-1]:
            ax.axvline(end, color="0.85", lw=0.6, zorder=0)
    lrs = trainer.history["lr"]
    # (A change before epoch e + 1 is drawn at the end of epoch e.)
    changes = [e for e in range(1, min(len(lrs), len(ends))) if lrs[e] != lrs[e - 1]]
    if len(changes) > MAX_LR_MARKS:
        # Bottom left, on white: the curves start at the top left and fall.
        ax.annotate(f"lr {lrs[0]:.3g} \u2192 {lrs[changes[-1]]:.3g} in {len(changes)} changes",
                    (0.01, 0.02), xycoords="axes fraction", va="bottom", fontsize=7,
                    color="tab:green", bbox={"facecolor": "white", "edgecolor": "none",
                                             "alpha": 0.8, "pad": 1.5})
        changes = []
    for e in changes:
        ax.axvline(ends[e - 1], color="tab:green", ls="--", lw=0.8)
        ax.annotate(f"lr {lrs[e]:.3g}", (ends[e - 1], 1), xycoords=("data", "axes fraction"),
                    rotation=90, va="top", ha="right", fontsize=7, color="tab:green")
    ax.set_xlabel(f"iterations ({per_epoch} an epoch)")
    ax.set_ylabel(name)
    # As written: the title may hold a file's name, whose "$" is no math.
    title = _title(trainer)  # (a --text-file's name in any script)
    ax.set_title(title, fontsize=10, parse_math=False, family=text_fonts([title], SANS))
    _note_when_empty(ax, trainer)
    if not _recorded(trainer):
        # Only epoch lines, if any: show the iterations run, from 0, not their span.
        ax.set_xlim(0, max(_iterations_run(trainer), 1))
    ax.grid(alpha=0.3, which="both")
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    # Under the axes, in one row: inside, "best" placement may still cover the
    # learning-rate labels at the top, or a curve.
    return ax.figure.legend(handles, labels, loc="lower center", ncol=len(handles),
                            fontsize=8, frameon=False)


def _iterations_run(trainer):
    run = getattr(trainer, "iterations_run", None)
    if run is None:  # (a trainer of one's own, or of an older rnnlab)
        run = trainer.epoch * (trainer.iters_per_epoch or 1) + trainer.iteration
    return run


def _figure_positions(trainer):
    """The iteration at which each training figure was recorded: kept by the
    trainer, or (a trainer without them) every ``eval_interval`` from the start."""
    kept = getattr(trainer, "figure_iterations", None)
    if kept is not None and len(kept) == len(trainer.figure_list):
        return np.asarray(kept)
    return np.arange(1, len(trainer.figure_list) + 1) * trainer.eval_interval


def _epoch_ends(trainer):
    """The iteration at which each epoch of ``history['epoch']`` ended."""
    epochs = trainer.history["epoch"]
    kept = getattr(trainer, "epoch_iterations", None)
    if kept is not None and len(kept) == len(epochs):
        return np.asarray(kept)
    return np.asarray(epochs, dtype=int) * (trainer.iters_per_epoch or 1)


def _title(trainer):
    if trainer.title:
        return fitted_title(trainer.title)
    model = trainer.model
    config = getattr(model, "config", None) or {}
    sizes = ", ".join(f"{k}={v}" for k, v in config.items())
    return fitted_title(f"{type(model).__name__} ({sizes})" if sizes
                        else type(model).__name__)


def fitted_title(title: str, limit: int = MAX_TITLE) -> str:
    """``title``, or its start and end around "..." when longer than ``limit``
    characters: centred over the axes, a longer one ran off both sides."""
    if len(title) <= limit:
        return title
    head = (limit - 3) // 2
    return title[:head] + "..." + title[len(title) - (limit - 3 - head):]


def _in_notebook(matplotlib):
    backend = matplotlib.get_backend().lower()
    return any(k in backend for k in ("inline", "ipympl", "widget", "nbagg"))


def _can_show(matplotlib):
    backend = matplotlib.get_backend().lower()
    headless = backend in ("agg", "pdf", "ps", "svg", "cairo", "template") or backend.endswith(
        "backend_agg"
    )
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        headless = True
    return not headless
