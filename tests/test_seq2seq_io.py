"""Saving and loading seq2seq models (.npz, vocabulary included), the
textbook's eval_seq2seq, the batched accuracy, and the attention heat map."""

import numpy as np
import pytest

from common.attention_map import attention_matrix, plot_attention
from common.util import eval_seq2seq, seq2seq_accuracy, seq2seq_correct
from models import MODEL_CLASSES, AttentionSeq2seq, PeekySeq2seq, Seq2seq, load_model

V, D, H = 9, 4, 6
ID_TO_CHAR = dict(enumerate("_0123456+"))

MODELS = [
    pytest.param(Seq2seq, {}, id="plain"),
    pytest.param(PeekySeq2seq, {}, id="peeky"),
    pytest.param(AttentionSeq2seq, {}, id="attention"),
    pytest.param(AttentionSeq2seq, {"bidirectional": True}, id="attention-bidirectional"),
]


def trained_like(cls, kwargs, seed=0):
    model = cls(V, D, H, seed=seed, **kwargs)
    rng = np.random.default_rng(seed + 7)
    for p in model.params:
        p[...] = rng.standard_normal(p.shape).astype(np.float32)
    return model


@pytest.mark.parametrize(("cls", "kwargs"), MODELS)
def test_save_and_load_model(cls, kwargs, tmp_path):
    model = trained_like(cls, kwargs)
    xs = np.random.default_rng(0).integers(0, V, size=(5, 6))
    path = model.save_params(tmp_path / "m.npz", vocab=ID_TO_CHAR, task="toy")
    loaded, meta = load_model(path)
    assert type(loaded) is cls and loaded.config == model.config
    assert meta["vocab"] == [ID_TO_CHAR[i] for i in range(V)] and meta["task"] == "toy"
    np.testing.assert_array_equal(loaded.generate(xs, 0, 4), model.generate(xs, 0, 4))
    fresh = cls(V, D, H, seed=99, **kwargs)
    fresh.load_params(path)
    for p, q in zip(fresh.params, model.params, strict=True):
        np.testing.assert_array_equal(p, q)
    assert cls.__name__ in MODEL_CLASSES


def test_default_file_name_and_pickle_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = Seq2seq(V, D, H, seed=0)
    assert model.save_params() == "Seq2seq.npz"
    model.load_params()
    with pytest.raises(ValueError, match="pickle"):
        model.save_params("Seq2seq.pkl")


def test_load_refuses_another_model(tmp_path):
    path = Seq2seq(V, D, H, seed=0).save_params(tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="decoder"):
        PeekySeq2seq(V, D, H, seed=0).load_params(path)
    with pytest.raises(ValueError, match="encoder.lstm"):
        AttentionSeq2seq(V, D, H, seed=0, bidirectional=True).load_params(path)
    # The message says what the file holds and how to build it.
    with pytest.raises(ValueError) as exc:
        Seq2seq(V, D, H + 2).load_params(path)
    assert f"The file holds Seq2seq(vocab_size={V}, wordvec_size={D}, hidden_size={H})" in str(
        exc.value)
    assert "models.load_model(" in str(exc.value)


def test_param_shapes_match_the_models():
    for cls, kwargs in [(Seq2seq, {}), (PeekySeq2seq, {}), (AttentionSeq2seq, {}),
                        (AttentionSeq2seq, {"bidirectional": True})]:
        model = cls(V, D, H, seed=0, **kwargs)
        shapes = {k: v.shape for k, v in model.named_params().items()}
        assert cls.param_shapes(model.config) == shapes


def test_constructor_checks_sizes():
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        Seq2seq(V, D, 0)
    with pytest.raises(ValueError, match="bidirectional must be True or False"):
        AttentionSeq2seq(V, D, H, bidirectional="yes")


def test_eval_seq2seq_textbook_helper(capsys):
    model = trained_like(Seq2seq, {})
    question = np.array([[1, 2, 8, 3, 4]])
    guess = model.generate(question, 0, 3)[0]
    right = np.concatenate([[0], guess])[None]
    assert eval_seq2seq(model, question, right, ID_TO_CHAR, True, True) == 1
    out = capsys.readouterr().out
    assert "Q 32+10" in out  # printed reversed back
    wrong = right.copy()
    wrong[0, 1] = (wrong[0, 1] + 1) % V
    assert eval_seq2seq(model, question, wrong, ID_TO_CHAR) == 0


@pytest.mark.parametrize(("cls", "kwargs"), MODELS)
def test_batched_accuracy_equals_one_question_per_call(cls, kwargs):
    model = trained_like(cls, kwargs)
    rng = np.random.default_rng(1)
    questions = rng.integers(0, V, size=(40, 6))
    answers = np.concatenate([np.zeros((40, 1), int), model.generate(questions, 0, 3)], axis=1)
    answers[::3, 2] = (answers[::3, 2] + 1) % V  # a third of them wrong
    one_by_one = [eval_seq2seq(model, questions[[i]], answers[[i]], ID_TO_CHAR)
                  for i in range(40)]
    np.testing.assert_array_equal(seq2seq_correct(model, questions, answers, batch_size=7),
                                  np.array(one_by_one, dtype=bool))
    assert seq2seq_accuracy(model, questions, answers) == pytest.approx(np.mean(one_by_one))
    assert seq2seq_accuracy(model, questions, answers, beam_width=3) >= 0


def test_eval_seq2seq_refuses_ids_it_would_misread():
    """A float id would be cut to an int (0.9 read as 0), and a list's id -1
    would read its last character: both could score a wrong answer right."""
    model = Seq2seq(V, D, H, seed=0)
    question = np.array([[1, 2, 8, 3, 4]])
    right = np.concatenate([[0], model.generate(question, 0, 3)[0]])[None]
    with pytest.raises(TypeError, match="correct must hold integer ids, got dtype float64"):
        eval_seq2seq(model, question, right + 0.9, ID_TO_CHAR)
    with pytest.raises(TypeError, match="question must hold integer ids"):
        eval_seq2seq(model, question.astype(np.float32), right, ID_TO_CHAR)
    # An id outside the model's vocabulary is refused as seq2seq_correct refuses
    # it, even where id_to_char has a character for it.
    padded = right.copy()
    padded[0, -1] = -2  # not the loss's ignore_label (-1)
    with pytest.raises(ValueError, match=r"holds the id -2, outside the vocabulary range "
                                         r"\[0, 9\) or the ignore_label -1"):
        eval_seq2seq(model, question, padded, list(ID_TO_CHAR.values()))
    padded[0, -1] = V
    longer = dict(enumerate("_0123456+="))  # V + 1 characters
    with pytest.raises(ValueError, match=rf"holds the id {V}, outside the vocabulary range"):
        eval_seq2seq(model, question, padded, longer)
    with pytest.raises(ValueError, match=rf"holds the id {V}, outside the vocabulary range"):
        seq2seq_correct(model, question, padded)
    with pytest.raises(ValueError, match=r"has no character in id_to_char \(1 entries\): give "
                                         r"the id_to_char the data was encoded with"):
        eval_seq2seq(model, question, right, {0: "_"})


def test_eval_seq2seq_skips_the_targets_the_loss_ignores(capsys):
    """A target equal to the loss's ignore_label (-1) is not scored, as in
    seq2seq_correct: any answer there counts as right, and it prints as *."""
    model = trained_like(Seq2seq, {})
    question = np.array([[1, 2, 8, 3, 4]])
    guess = model.generate(question, 0, 3)[0]
    padded = np.concatenate([[0], guess])[None]
    padded[0, -1] = -1
    assert eval_seq2seq(model, question, padded, list(ID_TO_CHAR.values()), verbose=True) == 1
    assert seq2seq_correct(model, question, padded).tolist() == [True]
    assert capsys.readouterr().out.splitlines()[1].endswith("*")
    padded[0, 1] = (padded[0, 1] + 1) % V  # a scored target wrong
    assert eval_seq2seq(model, question, padded, ID_TO_CHAR) == 0
    assert seq2seq_correct(model, question, padded).tolist() == [False]
    model.loss_layer.ignore_label = None  # every target scored: -1 is no id
    for score in (lambda: eval_seq2seq(model, question, padded, ID_TO_CHAR),
                  lambda: seq2seq_correct(model, question, padded)):
        with pytest.raises(ValueError, match=r"holds the id -1, outside the vocabulary range"):
            score()


def test_batched_accuracy_errors():
    model = Seq2seq(V, D, H, seed=0)
    with pytest.raises(ValueError, match="same N"):
        seq2seq_accuracy(model, np.zeros((3, 4), int), np.zeros((2, 4), int))
    for batch_size in (0, 10.5, None, True):
        with pytest.raises(ValueError, match=r"batch_size must be a whole number >= 1"):
            seq2seq_accuracy(model, np.zeros((3, 4), int), np.zeros((3, 4), int),
                             batch_size=batch_size)
    with pytest.raises(TypeError, match="answers must hold integer ids, got dtype float64"):
        seq2seq_accuracy(model, np.zeros((3, 4), int), np.zeros((3, 4)))
    assert 0 <= seq2seq_accuracy(model, np.zeros((3, 4), int), np.zeros((3, 4), int),
                                 batch_size=np.int64(2)) <= 1
    # Questions of two lengths used to get NumPy's "inhomogeneous shape" alone, and an
    # answer's bad id was said to be in forward's ts, an argument the caller never gave.
    with pytest.raises(ValueError, match=r"^questions must be an array, one row per example, "
                                         r"every row of one length \(pad the shorter ones\)"):
        seq2seq_accuracy(model, [[1, 2, 3], [3, 4]], [[0, 1], [0, 2]])
    with pytest.raises(ValueError, match=r"^questions and answers do not fit Seq2seq\.forward"
                                         r"\(xs, ts\): ts\[:, 1:\] \(the targets\) holds the "
                                         rf"id {V}"):
        seq2seq_accuracy(model, [[1, 2, 3], [3, 4, 1]], [[0, 1], [0, V]])


def test_attention_maps_refuse_what_they_cannot_draw(tmp_path):
    """Before any forward there are no weights; a row must be a question of
    the batch; NaN weights (a diverged model) would draw a blank map."""
    weights = [np.full((3, 5), 0.2), np.full((3, 5), 0.2)]
    with pytest.raises(ValueError, match="attention_weights is empty: run the model's forward "
                                         "or generate first"):
        attention_matrix([], 0)
    for row in (3, -1, 1.0, True):
        with pytest.raises(ValueError, match=r"row must be a question's index in 0..2"):
            attention_matrix(weights, row)
    assert attention_matrix(weights, np.int64(2)).shape == (2, 5)
    labels_in, labels_out = list("abcde"), list("xy")
    with pytest.raises(ValueError, match="NaN or infinite"):
        plot_attention(np.full((2, 5), np.nan), labels_in, labels_out, path=tmp_path / "n.png")
    with pytest.raises(ValueError, match="hold no weight to draw"):
        plot_attention(np.zeros((0, 5)), labels_in, [], path=tmp_path / "e.png")
    assert list(tmp_path.iterdir()) == []


def test_an_answer_of_no_steps_leaves_no_attention_weights_of_an_earlier_pass():
    # The weights of the last forward (3 steps) would be drawn as the map of an answer
    # that has no characters.
    model = AttentionSeq2seq(V, D, H, seed=0)
    model.forward(np.array([[1, 2, 3]]), np.array([[0, 1, 2, 3]]))
    assert len(model.decoder.attention.attention_weights) == 3
    assert model.generate(np.array([[1, 2, 3]]), 0, 0).shape == (1, 0)
    assert model.decoder.attention.attention_weights == []


def test_plot_attention_labels_and_file(tmp_path):
    model = trained_like(AttentionSeq2seq, {})
    xs = np.array([[1, 2, 8, 3, 4]])
    ids = model.generate(xs, 0, 3)
    weights = attention_matrix(model.decoder.attention.attention_weights, 0)
    assert weights.shape == (3, 5)
    in_labels = [ID_TO_CHAR[int(i)] for i in xs[0]]
    out_labels = [ID_TO_CHAR[int(i)] for i in ids[0]]
    fig = plot_attention(weights, in_labels, out_labels, path=tmp_path / "a.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "input characters" and ax.get_ylabel() == "output characters"
    assert [t.get_text() for t in ax.get_xticklabels()] == in_labels
    assert [t.get_text() for t in ax.get_yticklabels()] == out_labels
    # Each label at its own column and row, not one off.
    assert [t.get_position()[0] for t in ax.get_xticklabels()] == list(range(len(in_labels)))
    assert [t.get_position()[1] for t in ax.get_yticklabels()] == list(range(len(out_labels)))
    assert (tmp_path / "a.png").stat().st_size > 1000
    np.testing.assert_allclose(ax.images[0].get_array().sum(axis=1), 1.0, rtol=1e-5)


def test_plot_attention_numbers_a_long_question_instead_of_labelling_it(tmp_path):
    # Two thousand tick labels merged into a black bar, took some 10 s a panel
    # to draw (against 0.3 s of training on such a file), and the whole
    # question as the title ran off the figure.
    from common.attention_map import MAX_LABELLED, MAX_TITLE

    T_in = 2000
    question = ("ab" * T_in)[:T_in]
    fig = plot_attention(np.full((2, T_in), 1 / T_in), list(question), list("xy"),
                         path=tmp_path / "long.png", title=f"{question} -> xy")
    ax = fig.axes[0]
    assert len(ax.get_xticks()) <= 20 and all(float(t).is_integer() for t in ax.get_xticks())
    assert "2000" in ax.get_xlabel() and "position" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y"]  # the answer still labelled
    assert len(ax.get_title()) == MAX_TITLE and ax.get_title().endswith("...")
    assert fig.get_size_inches()[0] <= 0.28 * MAX_LABELLED + 1.5
    assert (tmp_path / "long.png").stat().st_size > 1000


def test_plot_attention_errors():
    with pytest.raises(ValueError, match="input labels"):
        plot_attention(np.ones((2, 3)) / 3, ["a", "b"], ["x", "y"])
    with pytest.raises(ValueError, match=r"\(T_out, T_in\)"):
        plot_attention(np.ones(3), ["a", "b", "c"], ["x"])
    with pytest.raises(ValueError, match="plot format"):
        plot_attention(np.ones((1, 1)), ["a"], ["x"], path="map.txt")


# -- what a careful user gets wrong, and is told -------------------------------------------


def _batch(seed=0, n=5):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (n, 4)), rng.integers(0, V, (n, 3))


@pytest.mark.parametrize("cls", [Seq2seq, PeekySeq2seq, AttentionSeq2seq])
def test_backward_after_generate_is_refused_not_run_on_the_wrong_values(cls):
    xs, ts = _batch()
    model = cls(V, D, H, seed=0)
    model.forward(xs, ts)
    model.generate(xs, 0, 2)  # runs the layers on other inputs
    with pytest.raises(RuntimeError, match="generating, predicting or evaluating in between"):
        model.backward()
    model.forward(xs, ts)  # a new forward: backward is fine again
    model.backward()


@pytest.mark.parametrize(("cls", "kwargs"), MODELS)
def test_the_book_style_parts_run_between_forward_and_backward_are_refused(cls, kwargs):
    """The textbook answers with ``decoder.generate(encoder.forward(q), ...)``;
    done between forward and backward it replaces the parts' saved values
    (with an answer of one id, backward would even run, on the wrong ones)."""
    xs, ts = _batch(n=2)
    ts = ts[:, :2]  # answers of one id: as long as a one-step generate
    model = cls(V, D, H, seed=0, **kwargs)
    model.forward(xs, ts)
    model.backward()
    grads = [g.copy() for g in model.grads]
    others = (xs + 1) % V
    encoding = model.encoder.forward(others)  # (what the decoder takes: h, or all of hs)
    for between in (lambda: model.decoder.generate(model.encoder.forward(others), 0, 1),
                    lambda: model.encoder.forward(others),
                    # (the decoder alone: its scores of other answers, say)
                    lambda: model.decoder.forward((ts[:, :-1] + 1) % V, encoding)):
        model.forward(xs, ts)
        between()
        with pytest.raises(RuntimeError, match="the encoder or decoder has run on other inputs"):
            model.backward()
    model.forward(xs, ts)  # a new forward: backward is right again
    model.backward()
    for g, want in zip(model.grads, grads, strict=True):
        np.testing.assert_array_equal(g, want)


@pytest.mark.parametrize(("cls", "kwargs"), MODELS)
def test_the_book_style_parts_say_what_is_wrong_with_their_input(cls, kwargs):
    xs, ts = _batch(n=2)
    model = cls(V, D, H, seed=0, **kwargs)
    encoding = model.encoder.forward(xs)  # h (N, H), or all states (N, T_enc, H)
    name = "enc_hs" if cls is AttentionSeq2seq else "h"
    with pytest.raises(TypeError, match=f"{name} must be an array of shape"):
        model.decoder.generate(encoding.tolist(), 0, 3)
    assert model.decoder.generate(encoding[:0], 0, 3).shape == (0, 3)  # as model.generate
    with pytest.raises(ValueError, match=f"{name} has 2 rows but xs has 1"):
        model.decoder.forward(ts[:1, :-1], encoding)
    if cls is AttentionSeq2seq:
        with pytest.raises(ValueError, match=r"enc_hs must have shape \(N, T_enc, H\)"):
            model.decoder.generate(encoding[:, -1], 0, 3)  # a plain Seq2seq's h
        with pytest.raises(ValueError, match="enc_hs has no steps"):
            model.decoder.generate(encoding[:, :0], 0, 3)
    with pytest.raises(RuntimeError, match=r"Encoder.backward\(\) called before forward\(\)"):
        cls(V, D, H, seed=0, **kwargs).encoder.backward(encoding)
    with pytest.raises(ValueError, match="questions of one length"):
        model.generate([[1, 2, 3], [1, 2]], 0, 3)


def test_a_language_models_backward_after_generate_is_refused():
    from models import Rnnlm

    rng = np.random.default_rng(0)
    model = Rnnlm(V, D, H, seed=0)
    model.forward(rng.integers(0, V, (2, 3)), rng.integers(0, V, (2, 3)))
    model.generate([1, 2], 3)
    with pytest.raises(RuntimeError, match="generating, predicting or evaluating in between"):
        model.backward()


@pytest.mark.parametrize("beam_width", [1, 2])
def test_a_diverged_model_is_told_not_answered(beam_width):
    from models import Rnnlm

    xs, _ = _batch()
    model = Seq2seq(V, D, H, seed=0)
    model.params[-1][...] = np.nan
    with pytest.raises(FloatingPointError, match="non-finite scores"):
        model.generate(xs, 0, 3, beam_width=beam_width)
    lm = Rnnlm(V, D, H, seed=0)
    lm.params[-1][...] = np.nan
    with pytest.raises(FloatingPointError, match="non-finite scores"):
        lm.generate([1], 3, beam_width=2)


@pytest.mark.parametrize("call, error, message", [
    (lambda m, xs, ts: m.generate(xs, 1.7, 3), TypeError, "start_id must hold integer"),
    (lambda m, xs, ts: m.generate(xs, True, 3), TypeError, "start_id must hold integer"),
    (lambda m, xs, ts: m.generate(xs, np.ones((2, 2), int), 3), ValueError, "one per question"),
    (lambda m, xs, ts: m.generate(xs, 0, True), ValueError, "sample_size must be an integer"),
    (lambda m, xs, ts: m.generate(xs, 0, 2, beam_width=True), ValueError, "beam_width"),
    (lambda m, xs, ts: m.generate(xs[:, :0], 0, 3), ValueError, "at least one column"),
    (lambda m, xs, ts: m.forward(xs, ts.astype(float)), TypeError, r"ts\[:, :-1\]"),
    (lambda m, xs, ts: m.forward(xs, np.where(ts == ts[0, 1], -1, ts)), ValueError,
     r"ts\[:, :-1\] \(the decoder's input\) holds the id -1"),
    (lambda m, xs, ts: seq2seq_accuracy(m, xs, ts[:, :1]), ValueError, "2 columns or more"),
    (lambda m, xs, ts: eval_seq2seq(m, xs[:3], ts[:3], {i: str(i) for i in range(V)}),
     ValueError, "scores one question"),
])
def test_bad_arguments_are_named(call, error, message):
    xs, ts = _batch()
    ts[:, 1] = np.arange(len(ts)) % V  # a decoder input id to replace with -1
    with pytest.raises(error, match=message):
        call(Seq2seq(V, D, H, seed=0), xs, ts)


def test_the_book_generate_by_beam_refuses_a_state_of_many_rows():
    from models import RnnlmGen

    model = RnnlmGen(V, D, H, seed=0)
    model.predict(np.random.default_rng(0).integers(0, V, (4, 3)))
    with pytest.raises(ValueError, match="carried state holds 4 rows"):
        model.generate(1, sample_size=3, beam_width=2)


def test_concat_and_repeat_check_their_inputs_and_gradients():
    """The peeky and attention decoders' small layers: wrong inputs are named
    at the call, and a gradient must have the shape and dtype forward gave."""
    from layers import Concat, TimeRepeat

    a, b = np.ones((2, 3), np.float32), np.ones((2, 4), np.float32)
    with pytest.raises(RuntimeError, match=r"Concat.backward\(\) called before forward"):
        Concat().backward(np.ones((2, 7), np.float32))
    with pytest.raises(TypeError, match="input 0 must be a float array"):
        Concat().forward([1.0, 2.0], [3.0])
    with pytest.raises(ValueError, match="input 0 must have at least one axis"):
        Concat().forward(np.float32(1.0), np.float32(2.0))
    with pytest.raises(TypeError, match="input 1 has dtype float64 but input 0 is float32"):
        Concat().forward(a, b.astype(np.float64))
    with pytest.raises(ValueError, match=r"input 1 must have shape \(2, D\) \(2 dims\)"):
        Concat().forward(a, np.ones((2, 1, 4), np.float32))
    concat = Concat()
    assert concat.forward(a, b).shape == (2, 7)
    with pytest.raises(ValueError, match=r"dout must have the joined shape \(2, 7\)"):
        concat.backward(np.ones((9, 7), np.float32))
    with pytest.raises(TypeError, match="dout has dtype float64 but the forward's inputs are "
                                        "float32"):
        concat.backward(np.ones((2, 7)))
    da, db = concat.backward(np.arange(14, dtype=np.float32).reshape(2, 7))
    assert da.tolist() == [[0, 1, 2], [7, 8, 9]] and db.shape == (2, 4)

    with pytest.raises(RuntimeError, match=r"TimeRepeat.backward\(\) called before forward"):
        TimeRepeat().backward(np.ones((2, 4, 3), np.float32))
    for T in (0, 2.0, True, None):
        with pytest.raises(ValueError, match=r"T must be a whole number of steps >= 1"):
            TimeRepeat().forward(a, T)
    repeat = TimeRepeat()
    assert repeat.forward(a, np.int64(4)).shape == (2, 4, 3)
    with pytest.raises(ValueError, match=r"dhs must have shape \(2, 4, 3\), got \(7, 4, 5\)"):
        repeat.backward(np.ones((7, 4, 5), np.float32))
    with pytest.raises(TypeError, match="dhs has dtype float64 but the forward's h is float32"):
        repeat.backward(np.ones((2, 4, 3)))
    assert repeat.backward(np.ones((2, 4, 3), np.float32)).tolist() == [[4.0] * 3] * 2


def test_small_layers_and_files_refuse_what_does_not_fit(tmp_path):
    from layers import Concat, TimeLSTM
    from layers.bidirectional import Bidirectional

    concat = Concat()
    concat.forward(np.ones((2, 3, 4), np.float32), np.ones((2, 3, 2), np.float32))
    with pytest.raises(ValueError, match=r"the joined shape \(2, 3, 6\) \(widths \[4, 2\]\)"):
        concat.backward(np.ones((2, 3, 9), np.float32))
    rng = np.random.default_rng(0)

    def lstm(stateful):
        return TimeLSTM(*(rng.standard_normal(s).astype(np.float32)
                          for s in ((3, 8), (2, 8), (8,))), stateful=stateful)

    with pytest.raises(ValueError, match="cannot be stateful"):
        Bidirectional(lstm(True), lstm(False))
    bi = Bidirectional(lstm(False), lstm(False))
    bi.forward(np.ones((2, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"dhs must have shape \(2, 5, 4\) .* got \(2, 5, 2\)"):
        bi.backward(np.ones((2, 5, 2), np.float32))
    model = Seq2seq(V, D, H, seed=0)
    with pytest.raises(ValueError, match="fewer than the model's 9 ids"):
        model.save_params(tmp_path / "m.npz", vocab=["a", "b"])
    with pytest.raises(ValueError, match="keys are not those ids"):
        model.save_params(tmp_path / "m.npz", vocab={i + 1: str(i) for i in range(V)})


def test_a_float64_model_loads_as_float64_bit_for_bit(tmp_path):
    model = AttentionSeq2seq(V, D, H, seed=0, dtype=np.float64)
    model.save_params(tmp_path / "m.npz")
    again, _ = load_model(tmp_path / "m.npz")
    assert all(p.dtype == np.float64 and np.array_equal(p, q)
               for p, q in zip(again.params, model.params, strict=True))


def test_the_book_style_generate_of_a_bidirectional_model_answers_as_the_model():
    xs, _ = _batch(3)
    model = AttentionSeq2seq(V, D, H, seed=0, bidirectional=True)
    book = model.decoder.generate(model.encoder.forward(xs), 0, 4)  # the book's AttentionSeq2seq
    np.testing.assert_array_equal(book, model.generate(xs, 0, 4))


def test_a_models_dtype_is_a_floating_type_and_attention_weights_are_of_the_last_call():
    for dtype in (np.int32, None, "no such type"):
        with pytest.raises(ValueError, match="dtype must be np.float32"):
            Seq2seq(V, D, H, dtype=dtype)
    xs, _ = _batch()
    model = AttentionSeq2seq(V, D, H, seed=0)
    model.generate(xs, 0, 3)
    assert len(model.decoder.attention.attention_weights) == 3
    for questions, length in ((xs, 0), (xs[:0], 3)):
        model.generate(questions, 0, length)
        assert model.decoder.attention.attention_weights == []
