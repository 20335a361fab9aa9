"""What the audit of the views inside trained models found, each kept fixed.

The page's data cannot be broken by a token; a text where nothing varies
gets a message, not a traceback; figures draw ``$`` and Hebrew or emoji as
written; text on a coloured cell stays readable; a pinned position is
scrolled to; the training plot's labels read as plain numbers and its
legend covers nothing; a gradient curve of one step still shows its points.
(The same page in a real browser: ``tests/test_units_html_browser.py``.)
"""

import io
import json
import re
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from common.attention_map import plot_attention
from common.inspection import (
    gradient_through_time,
    hidden_state_gradients,
    interesting_units,
    record_states,
    text_properties,
    token_surprisal,
)
from common.optimizer import SGD
from common.plot import MONOSPACE, readable_text_colour, relative_luminance
from common.trainer import RnnlmTrainer
from common.units_html import units_page
from models import AttentionSeq2seq, Rnnlm, Seq2seq, SimpleRnnlm

from script_loader import load_script

script = load_script


def contrast(a, b):
    """WCAG's contrast ratio of two colours (three numbers in 0..1 each)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def drawn(fig):
    """Draw ``fig`` (to PNG bytes) so that its tick labels and layout exist."""
    fig.savefig(io.BytesIO(), format="png")
    return fig


# -- 1. the page's data block ------------------------------------------------------------


def test_no_token_can_end_or_alter_the_pages_data_block():
    # "<!--" then "<script" would make the HTML parser skip the block's real
    # end tag, and the page's code would never run (a blank page).
    tokens = ["<!--<script>", "a", "</script>", "-->", "<b>"]
    page = units_page(tokens, "word", [("h0:0", "h0:0", [0.1, -0.2, 0.3, 0.4, -0.5])])
    block = re.search(r'<script type="application/json" id="data">(.*?)</script>', page,
                      re.S).group(1)
    assert "<" not in block  # every "<" written as \u003c
    assert json.loads(block)["tokens"] == tokens  # and read back as it was


def test_the_pages_labels_are_escaped_and_its_data_is_strict_json():
    # Labels of one's own properties (interesting_units) go into the picker's
    # <option> elements; a NaN (allowed for the first token's bits) would be written
    # as NaN, which Python's json reads but the browser's JSON.parse refuses.
    page = units_page(["x", "y"], "char", [("h0:0", "<b>&", [0.5, float("nan")])],
                      bits=[float("nan"), 1.0])
    assert '<option value="0">&lt;b&gt;&amp;</option>' in page and "<b>&" not in page
    block = re.search(r'<script type="application/json" id="data">(.*?)</script>', page,
                      re.S).group(1)

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    data = json.loads(block, parse_constant=refuse)  # as strict as JSON.parse
    assert data["bits"] == [None, 1.0] and data["units"][0]["values"] == [0.5, None]


# -- 2. a text where nothing varies ------------------------------------------------------


def test_a_text_where_nothing_varies_has_no_interesting_unit():
    model = Rnnlm(5, 4, 3, seed=0)
    tokens = ["<eos>"] * 3
    assert text_properties(tokens) == {}
    assert interesting_units(record_states(model, np.zeros(3, np.int64)), {}) == []


def test_text_properties_of_no_tokens_says_what_to_pass():
    with pytest.raises(ValueError, match="at least one token, got an empty list"):
        text_properties([])


@pytest.mark.parametrize("shape", [(1, 0), (0, 3)])
def test_gradient_through_time_without_steps_or_sequences_names_the_shape(shape):
    xs = np.zeros(shape, np.int64)
    with pytest.raises(ValueError, match=re.escape(f"shape {shape}") + ".*N >= 1 and T >= 1"):
        gradient_through_time(Rnnlm(5, 4, 3, seed=0), xs, xs)


@pytest.mark.parametrize("look", [
    lambda m, ids: record_states(m, ids),
    lambda m, ids: token_surprisal(m, ids),
    lambda m, ids: gradient_through_time(m, ids[None], ids[None]),
])
@pytest.mark.parametrize(("cls", "where"), [(Seq2seq, "reads only those with attention"),
                                            (AttentionSeq2seq, "draws its attention weights")])
def test_a_sequence_to_sequence_model_is_refused_by_name(look, cls, where):
    """Its encoder and decoder are no stack of layers from ids to scores:
    the functions said it had no recurrent layer, or had no predict."""
    with pytest.raises(ValueError, match=f"got {cls.__name__}, a sequence-to-sequence model, "
                                         f"not a language model: .*{where}"):
        look(cls(9, 4, 8, seed=0), np.arange(5))


def test_arguments_of_the_unit_and_surprisal_functions_are_checked():
    model = Rnnlm(5, 4, 3, seed=0)
    ids = np.array([0, 1, 2, 3, 4, 1])
    rec = record_states(model, ids)
    with pytest.raises(ValueError, match=r"property 'mine' has shape \(5,\): it needs one value "
                                         r"per token of the recording, shape \(6,\)"):
        interesting_units(rec, {"mine": np.arange(5.0)})
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="per_property must be a whole number >= 1"):
            interesting_units(rec, {"mine": np.arange(6.0)}, per_property=bad)
    assert len(interesting_units(rec, {"mine": np.arange(6.0)}, per_property=np.int64(2))) == 2
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="time_size must be a whole number >= 1"):
            token_surprisal(model, ids, time_size=bad)


def test_units_of_a_text_where_nothing_varies_exits_2_with_a_message(tmp_path, capsys):
    path = tmp_path / "word.npz"
    SimpleRnnlm(3, 4, 4, seed=0).save_params(path, vocab=["<eos>", "the", "cat"])
    inspect_model = script("inspect_model")
    assert inspect_model.main(["units", "--model", str(path), "--text", "\n\n\n"]) == 2
    err = capsys.readouterr().err
    assert "no property of the text varies" in err and "--units" in err
    # Units named on the command line are still shown for such a text.
    assert inspect_model.main(["units", "--model", str(path), "--text", "\n\n\n",
                               "--units", "h0:1"]) == 0


# -- 3 and 4. text in figures drawn as written -------------------------------------------


def test_attention_title_and_labels_are_not_read_as_math():
    fig = drawn(plot_attention(np.eye(4), list("$5+$"), list("$ab$"),
                               title="$5+$ -> $ab$"))
    ax = fig.axes[0]
    labels = [ax.title, *ax.get_xticklabels(), *ax.get_yticklabels()]
    assert ax.get_title() == "$5+$ -> $ab$"
    assert not any(text.get_parse_math() for text in labels)  # "$...$" is no math text


def test_figure_fonts_fall_back_to_dejavu_sans_for_hebrew_and_emoji(tmp_path):
    assert MONOSPACE[0] == "monospace" and "DejaVu Sans" in MONOSPACE
    inspect_model = script("inspect_model")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" would be raised
        plot_attention(np.eye(3), list("ש😀a"), list("ם$b"), title="שלום 😀",
                       path=tmp_path / "a.png")
        inspect_model.heat_map([("h0:0", "h0:0", [1.0, -1.0, 0.5])], list("ש😀a"), "char",
                               tmp_path / "u.png")
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "u.png").stat().st_size > 0


# -- 5. text on coloured cells -----------------------------------------------------------


def test_text_on_a_dark_background_is_white_and_always_readable():
    assert readable_text_colour((0.0, 0.0, 1.0)) == "white"  # full blue
    assert readable_text_colour((1.0, 0.0, 0.0)) == "black"  # full red
    assert readable_text_colour((1.0, 1.0, 1.0)) == "black"
    text = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}
    for v in np.linspace(0, 1, 256):
        for background in ((v, v, 1.0), (1.0, v, v), (v, v, v)):  # the page's blues and reds
            fg = text[readable_text_colour(background)]
            assert contrast(fg, background) >= 4.5, background


def test_heat_map_characters_are_white_on_saturated_cells(tmp_path, monkeypatch):
    inspect_model = script("inspect_model")
    figures = []
    save = inspect_model.save_figure

    def spy(fig, path, dpi=100):
        figures.append(fig)
        save(fig, path, dpi=dpi)

    monkeypatch.setattr(inspect_model, "save_figure", spy)
    inspect_model.heat_map([("h0:0", "h0:0", [-1.0, 0.0, 1.0])], list("abc"), "char",
                           tmp_path / "u.png")
    colours = [text.get_color() for text in figures[0].axes[0].texts]
    assert colours == ["white", "black", "black"]  # full blue, white, full red


# -- 6. a pinned position ----------------------------------------------------------------


def test_a_position_in_the_address_is_scrolled_into_view():
    page = units_page(list("ab"), "char", [("h0:0", "h0:0", [0.1, -0.1])])
    from_fragment = page[page.index("function fromFragment"):]
    assert re.search(r"pin\(pos\);\s*(//[^\n]*\s*)*spans\[pos\]\.scrollIntoView", from_fragment)


# -- 7. the training plot -----------------------------------------------------------------


def noisy_cycle(n, seed, V=12):
    """0, 1, ..., 9, 0, ... with 10% of the tokens replaced at random."""
    rng = np.random.default_rng(seed)
    ids = np.arange(n) % 10
    noise = rng.random(n) < 0.1
    ids[noise] = rng.integers(0, V, size=noise.sum())
    return ids


def trained(max_epoch=3, eval_interval=10, **options):
    corpus = noisy_cycle(800, 0)
    trainer = RnnlmTrainer(SimpleRnnlm(12, 8, 8, seed=0), SGD(lr=0.5))
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=max_epoch, batch_size=4, time_size=5,
                eval_interval=eval_interval, verbose=False, **options)
    return trainer


def test_log_axis_labels_are_plain_numbers(tmp_path):
    fig = trained().plot(ylim=(5, 50), path=tmp_path / "ppl.png")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True)]
    labels = [label for label in labels if label]
    assert "40" in labels and "10" in labels  # not 4x10^1, 10^1
    assert all(re.fullmatch(r"[0-9.]+", label) for label in labels), labels


def test_the_legend_covers_neither_the_curves_nor_the_learning_rate_labels(tmp_path):
    trainer = trained(val_corpus=noisy_cycle(200, 1), lr_halve_from=2)
    fig = trainer.plot(path=tmp_path / "ppl.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["lr 0.25", "lr 0.125"]
    (legend,) = fig.legends  # under the axes, not inside them
    box = legend.get_window_extent()
    assert not box.overlaps(ax.get_window_extent())
    assert not any(box.overlaps(t.get_window_extent()) for t in ax.texts)
    assert [t.get_text() for t in legend.get_texts()][:2] == ["train", "validation"]


def test_a_run_shorter_than_eval_interval_has_no_empty_legend_entry(tmp_path):
    trainer = trained(max_epoch=2, eval_interval=1000, max_iters=3)  # stopped in epoch 1
    assert trainer.ppl_list == []
    fig = trainer.plot(path=tmp_path / "ppl.png")
    ax = fig.axes[0]
    assert fig.legends == [] and ax.get_legend() is None
    assert "train" not in [line.get_label() for line in ax.get_lines()]
    assert ax.get_xlim() == (0, 3)  # the iterations run, from 0


def test_a_run_shorter_than_eval_interval_draws_its_epochs_figures(tmp_path):
    # (Two whole epochs, whose perplexities the log printed, drew an empty plot.)
    trainer = trained(max_epoch=2, eval_interval=1000)
    assert trainer.ppl_list == []
    ax = trainer.plot(path=tmp_path / "ppl.png").axes[0]
    [line] = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert line.get_label() == "train (epoch means)"  # (the others: epoch boundaries)
    np.testing.assert_array_equal(line.get_ydata(), trainer.history["train_ppl"])
    np.testing.assert_array_equal(line.get_xdata(), [trainer.iters_per_epoch,
                                                     2 * trainer.iters_per_epoch])
    assert list(ax.texts) == [] and ax.get_yscale() == "log"
    # Epochs whose batches were all skipped record NaN: no point, so the note.
    trainer.history["train_ppl"][:] = [float("nan")] * 2
    ax = trainer.plot(path=tmp_path / "nan.png").axes[0]
    assert [t.get_text() for t in ax.texts][0].startswith("no training perplexity recorded")


def test_many_learning_rate_changes_are_summed_up_in_one_label(tmp_path):
    # (98 changes drew 98 rotated labels over one another, and 98 lines.)
    from common.plot import MAX_LR_MARKS

    few = trained(max_epoch=4, lr_halve_from=2)
    ax = few.plot(path=tmp_path / "a.png").axes[0]
    assert [t.get_text() for t in ax.texts] == ["lr 0.25", "lr 0.125", "lr 0.0625"]
    epochs = MAX_LR_MARKS + 3
    many = trained(max_epoch=epochs, lr_halve_from=2)
    ax = many.plot(path=tmp_path / "b.png").axes[0]
    lrs = many.history["lr"]
    [label] = ax.texts
    assert label.get_text() == f"lr {lrs[0]:.3g} \u2192 {lrs[-1]:.3g} in {epochs - 1} changes"
    assert label.xy == (0.01, 0.02)  # bottom left: the curves start at the top left


# -- 8. gradient through time of one step -------------------------------------------------


def test_a_gradient_curve_of_one_step_is_drawn_as_points(tmp_path):
    gtt = script("gradient_through_time")
    curves = [("tanh RNN", np.array([0.8])), ("LSTM", np.array([0.9]))]
    fig = gtt.plot(curves, SimpleNamespace(eval_batch=2, eval_length=1), tmp_path / "g.png")
    assert all(line.get_marker() == "o" for line in fig.axes[0].get_lines())
    left, right = fig.axes[0].get_xlim()
    assert left < 0 < right and right - left >= 1


def test_a_gradient_that_underflows_to_zero_is_said_in_the_legend(tmp_path):
    # (Its line just stopped on the log axis, with nothing to say why.)
    gtt = script("gradient_through_time")
    tanh = np.array([0.0, 0.0, 0.0, 1e-30, 1e-10, 0.5])  # t = 0 .. 5; 0 from 3 steps back
    curves = [("tanh RNN", tanh), ("LSTM", np.linspace(0.1, 1, 6))]
    fig = gtt.plot(curves, SimpleNamespace(eval_batch=2, eval_length=6), tmp_path / "g.png")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["tanh RNN (0 from 3 steps back)", "LSTM"]


# -- a later audit: what the views did with long texts, odd flags and padding ------------------


CHARS = list("abc .\n")


def char_model(tmp_path):
    path = tmp_path / "char.npz"
    Rnnlm(len(CHARS), 4, 4, seed=0).save_params(path, vocab=CHARS, level="char")
    return str(path)


def test_a_token_past_the_length_read_is_not_checked(tmp_path, capsys):
    """An unknown character at position 5,000 refused a run of the first 50."""
    text = tmp_path / "t.txt"
    text.write_text("abc a.\n" * 100 + "naïve café\n")
    inspect_model = script("inspect_model")
    argv = ["surprisal", "--model", char_model(tmp_path), "--text-file", str(text)]
    assert inspect_model.main([*argv, "--length", "50"]) == 0
    capsys.readouterr()
    assert inspect_model.main(argv) == 2  # the whole text: they are read, and named
    assert "'é', 'ï'" in capsys.readouterr().err


@pytest.mark.parametrize("flag, argv", [
    ("--text-file", ["surprisal", "--text-file", ""]),
    ("--model", ["units", "--text", "abc a.", "--model", ""]),
    ("--png", ["attention", "--input", "x", "--png", ""]),
    ("--html", ["surprisal", "--text", "abc a.", "--html", ""]),
])
def test_an_empty_flag_is_refused_before_the_work(tmp_path, capsys, flag, argv):
    """'' (an unset shell variable): a traceback after answering (--png), a page
    silently not written (--html), a ValueError traceback (--text-file)."""
    if "--model" not in argv:
        argv = [*argv, "--model", char_model(tmp_path)]
    with pytest.raises(SystemExit) as stop:
        script("inspect_model").main(argv)
    assert stop.value.code == 2
    assert f"{flag} is empty" in capsys.readouterr().err


def test_the_pages_table_of_guesses_is_checked_against_memory(tmp_path, capsys, monkeypatch):
    """A float32 row of the vocabulary at every token: 3.2 GB for 20,000 words of
    PTB, with no check; units kept it even without a page."""
    inspect_model = script("inspect_model")
    monkeypatch.setattr(inspect_model, "available_bytes", lambda: 2**20)
    argv = ["--model", char_model(tmp_path), "--text", "abc a.\n" * 20]
    assert inspect_model.main(["surprisal", *argv, "--html", str(tmp_path / "p.html")]) == 2
    out, err = capsys.readouterr()
    assert "give a smaller --length, or leave out --html" in err
    assert out == ""  # refused before the surprisal pass and its table, not after
    recorded = []
    record_states = inspect_model.record_states
    monkeypatch.setattr(inspect_model, "record_states",
                        lambda *a, **k: recorded.append(k) or record_states(*a, **k))
    assert inspect_model.main(["units", *argv, "--units", "h0:1"]) == 0
    assert recorded == [{"probs": False}]


def test_gradients_through_time_of_a_batch_with_ignored_last_targets_are_per_sequence():
    """Scaled by N where the loss averaged over fewer: 4x too large here."""
    model = Rnnlm(13, 5, 4, seed=2, dtype=np.float64)
    model.loss_layer.ignore_label = 0
    rng = np.random.default_rng(0)
    xs, ts = rng.integers(1, 13, size=(4, 6)), rng.integers(1, 13, size=(4, 6))
    alone = hidden_state_gradients(model, xs[:1], ts[:1])[0]
    padded = ts.copy()
    padded[1:, -1] = 0  # the other sequences' last targets are padding
    np.testing.assert_allclose(hidden_state_gradients(model, xs, padded)[0], alone,
                               rtol=1e-12, atol=1e-15)


def test_gradients_through_time_of_a_loss_that_ignores_nothing():
    """ignore_label=None (every target scored) failed in np.full; the gradients are
    the default loss's, and the loss layer keeps its own setting."""
    model = Rnnlm(13, 5, 4, seed=2, dtype=np.float64)
    rng = np.random.default_rng(0)
    xs, ts = rng.integers(0, 13, size=(3, 6)), rng.integers(0, 13, size=(3, 6))
    expected = hidden_state_gradients(model, xs, ts)
    model.loss_layer.ignore_label = None
    np.testing.assert_array_equal(hidden_state_gradients(model, xs, ts), expected)
    assert model.loss_layer.ignore_label is None


def test_a_vocabulary_longer_than_the_model_is_cut_to_its_ids(tmp_path):
    """train_rnnlm.py --corpus-size saves the corpus's vocabulary with a model
    that knows only its first V ids: a word past them is read as <unk>."""
    from common.inspection import encode_text, load_model

    path = Rnnlm(5, 4, 4, seed=0).save_params(
        tmp_path / "m.npz", vocab=["a", "b", "c", "d", "<unk>", "f", "g"])
    model, vocab, level = load_model(path)
    assert vocab == ["a", "b", "c", "d", "<unk>"] and level == "word"
    assert encode_text("a b f c", vocab, level)[1].tolist() == [0, 1, 4, 2]


def test_a_fractional_position_in_the_pages_address_is_not_pinned():
    """#pos=1.5 threw in the page's script, and hover and click stopped working."""
    page = units_page(["a", "b", "c"], "char", [], bits=[None, 1.0, 2.0])
    assert "Number.isInteger(pos) && pos >= 0" in page


def test_encode_text_reads_a_limit_of_tokens_or_refuses_it():
    from common.inspection import encode_text

    vocab = ["a", "b", "<eos>", "<unk>"]
    assert encode_text("a b zz\nb a", vocab, "word", limit=3)[0] == ["a", "b", "<unk>"]
    for bad in (0, -1, 2.5, True):  # -1 silently dropped the last token
        with pytest.raises(ValueError, match="limit must be a whole number >= 1"):
            encode_text("a b zz\nb a", vocab, "word", limit=bad)


def test_a_limit_cuts_only_a_start_of_a_long_text_into_tokens(monkeypatch):
    """``--length`` (3,000 tokens for ``units``) cut the whole text into tokens
    first: seconds and gigabytes for a book, a MemoryError for a large one.
    A start of the text gives the same first tokens, wherever it is cut
    (within a word, between \\r and \\n, in a run of spaces)."""
    import random

    from common import inspection
    from datasets.text import tokenize

    rng = random.Random(0)
    pieces = ["a", "bc", "é", " ", "   ", "\n", "\r\n", "\r", "\t", "日本"]
    for _ in range(3000):
        content = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 120)))
        limit = rng.randint(1, 12)
        for level in ("word", "char"):
            assert inspection._first_tokens(content, level, limit) == \
                tokenize(content, level)[:limit], (content, level, limit)
    # A start that gives exactly `limit` tokens may end inside the last word.
    assert inspection._first_tokens("a" * 20 + " b", "word", 1) == ["a" * 20]
    # Of a long text only a start is cut.
    cut = []
    monkeypatch.setattr("datasets.text.tokenize",
                        lambda text, level: cut.append(len(text)) or tokenize(text, level))
    vocab = ["the", "cat", "<eos>"]
    assert inspection.encode_text("the cat\n" * 100_000, vocab, "word", limit=3)[0] == \
        ["the", "cat", "<eos>"]
    assert cut == [48]
