"""Heat maps of attention weights: which input characters each output attends to.

    weights = model.decoder.attention.attention_weights   # T_out arrays (N, T_in)
    w = np.stack([a[0] for a in weights])                  # (T_out, T_in) of question 0
    plot_attention(w, list(question_text), list(answer_text), path="attention.png")

Rows are the output steps, columns the input positions; a row sums to 1.
"""

import os

import numpy as np

from common.plot import plot_format, quiet_glyphs, save_figure, text_fonts
from common.serialization import check_target

# Beyond this many characters an axis is numbered, not labelled: thousands of
# tick labels merge into a black bar and take far longer to draw than training.
MAX_LABELLED = 80
# A title is cut to this many characters (a whole long question would run off the figure).
MAX_TITLE = 60


def attention_matrix(attention_weights: list, row: int) -> np.ndarray:
    """The ``(T_out, T_in)`` weights of question ``row`` from a decoder's
    ``attention_weights`` (a list of ``(N, T_in)`` arrays, one per step)."""
    weights = [np.asarray(w) for w in attention_weights]
    if not weights:
        raise ValueError("attention_weights is empty: run the model's forward or generate "
                         "first (the decoder keeps one (N, T_in) array per output step)")
    if any(w.ndim != 2 for w in weights):
        raise ValueError(f"attention_weights must be (N, T_in) arrays, one per output step, "
                         f"got shapes {[w.shape for w in weights]}")
    N = len(weights[0])
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < N:
        raise ValueError(f"row must be a question's index in 0..{N - 1}, got {row!r}")
    return np.stack([w[row] for w in weights])


def plot_attention(weights, in_labels, out_labels, path: str | os.PathLike | None = None,
                   ax=None, title: str | None = None):
    """Draw ``weights`` ``(T_out, T_in)`` as a labelled heat map; return the Figure.

    Args:
        weights: attention weights, one row per output step.
        in_labels: ``T_in`` labels of the columns (the input characters).
        out_labels: ``T_out`` labels of the rows (the output characters).
        path: also write the figure there (format from the suffix, atomically).
        ax: draw into this matplotlib Axes (its figure is returned); a new
            Figure otherwise (no window is opened).
        title: the Axes' title.

    Labels and title are drawn as written: a ``$`` is a dollar sign, not the
    start of matplotlib's math text, and a character the monospace font
    lacks (Hebrew, Chinese) comes from an installed font that holds it
    (:func:`common.plot.text_fonts`). An axis of more than
    :data:`MAX_LABELLED` characters is numbered by position instead, and a
    title longer than :data:`MAX_TITLE` is cut (with "...").
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2:
        raise ValueError(f"weights must be a (T_out, T_in) matrix, got shape {weights.shape}")
    T_out, T_in = weights.shape
    if T_out == 0 or T_in == 0:
        raise ValueError(f"weights {weights.shape} hold no weight to draw: at least one "
                         f"output step and one input position")
    if not np.isfinite(weights).all():
        raise ValueError("weights hold NaN or infinite values (a model whose training "
                         "diverged?): the heat map would be blank")
    if len(in_labels) != T_in or len(out_labels) != T_out:
        raise ValueError(f"weights {weights.shape} need {T_in} input labels and {T_out} output "
                         f"labels, got {len(in_labels)} and {len(out_labels)}")
    if path is not None:
        # A name without a format, a folder, a file on the way: refused before drawing.
        plot_format(path)
        check_target(path)
    if ax is None:
        from matplotlib.figure import Figure

        width, height = min(T_in, MAX_LABELLED), min(T_out, MAX_LABELLED)
        fig = Figure(figsize=(max(4.0, 0.28 * width + 1.5), max(2.5, 0.3 * height + 1.2)))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto",
                      interpolation="nearest")
    ins, outs = [_show(c) for c in in_labels], [_show(c) for c in out_labels]
    if title and len(title) > MAX_TITLE:
        title = title[:MAX_TITLE - 3] + "..."
    labelled = [*(ins if T_in <= MAX_LABELLED else []),
                *(outs if T_out <= MAX_LABELLED else []), title or ""]
    literal = {"fontfamily": text_fonts(labelled), "parse_math": False}
    _label(ax.xaxis, ins, "input characters", literal)
    _label(ax.yaxis, outs, "output characters", literal)
    if title:
        ax.set_title(title, fontsize=9, **literal)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
    if path is not None:
        with quiet_glyphs():
            fig.tight_layout()
        save_figure(fig, path)
    return fig


def _label(axis, labels, name, literal):
    """Tick every position with its character, or, past MAX_LABELLED of them,
    number the positions (matplotlib's own ticks) and say so."""
    if len(labels) <= MAX_LABELLED:
        axis.set_ticks(range(len(labels)), labels, **literal)
        axis.set_label_text(name)
    else:
        from matplotlib.ticker import MaxNLocator

        axis.set_major_locator(MaxNLocator(integer=True))
        axis.set_label_text(f"{name}: position (too many, {len(labels)}, to label)")


def _show(label):
    """A space would be an invisible tick label."""
    return "␣" if label == " " else str(label)
