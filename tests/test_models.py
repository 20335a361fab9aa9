"""End-to-end gradient checks of every language model, and their contracts.

The model's loss is a function of all its parameters; central differences
of that loss must match ``backward`` for every one of them (float64).
"""

import numpy as np
import pytest

import models
from common.gradcheck import check_function
from common.optimizer import SGD
from layers import TimeAffine, TimeDropout, TimeEmbedding, TimeRNN, TimeSoftmaxWithLoss
from models import (
    MODEL_CLASSES,
    BetterRnnlm,
    GruRnnlm,
    LanguageModel,
    Model,
    Rnnlm,
    SimpleRnnlm,
    build_model,
    model_from_config,
)

N, T, V, D, H = 2, 3, 9, 4, 4


def check_model(model, rng):
    for p in model.params:  # larger than the default init: gradients well above round-off
        p[...] = rng.standard_normal(p.shape) * 0.5
    xs = rng.integers(0, V, size=(N, T))
    ts = rng.integers(0, V, size=(N, T))

    def loss():
        model.reset_state()
        return model.forward(xs, ts)

    def backward():
        loss()
        model.backward()
        return [g.copy() for g in model.grads]

    # A tied array (listed at each place it is used) is checked by the sum of its
    # gradients, as the optimizers update it.
    errors = check_function(loss, backward, model.params)
    assert max(errors) < 1e-6, errors


@pytest.mark.parametrize("cls", [SimpleRnnlm, Rnnlm, GruRnnlm])
def test_single_layer_models(cls, rng):
    check_model(cls(V, D, H, seed=0, dtype=np.float64), rng)


@pytest.mark.parametrize("tie_weights", [False, True])
def test_better_rnnlm_with_fixed_dropout_masks(tie_weights, rng):
    model = BetterRnnlm(V, D, H, num_layers=2, dropout_ratio=0.5, tie_weights=tie_weights,
                        seed=0, dtype=np.float64)
    for layer in model.layers:
        if isinstance(layer, TimeDropout):
            layer.set_mask(rng.random((N, T, D)) > 0.5)
    check_model(model, rng)


def test_tied_weights_are_one_array_updated_once():
    model = BetterRnnlm(V, D, D, tie_weights=True, dropout_ratio=0.0, seed=0)
    assert model.params[-2] is model.params[0]
    assert len(model.named_params()) == len(model.params) - 1
    xs = np.zeros((N, T), int)
    model.forward(xs, xs)
    model.backward()
    before = model.params[0].copy()
    SGD(1.0).update(model.params, model.grads)
    expected = before - (model.grads[0] + model.grads[-2])
    np.testing.assert_allclose(model.params[0], expected, rtol=1e-6, atol=1e-7)


def test_dropout_is_off_in_eval_mode():
    model = BetterRnnlm(V, D, D, dropout_ratio=0.5, seed=0)
    xs = np.arange(N * T).reshape(N, T) % V
    model.eval()
    first = model.predict(xs)
    model.reset_state()
    np.testing.assert_array_equal(model.predict(xs), first)
    model.train()
    model.reset_state()
    assert not np.array_equal(model.predict(xs), first)


def test_the_books_train_flg_switches_dropout_as_its_predict_and_forward_do():
    # (A book's line, model.predict(xs, train_flg=False), was a TypeError.)
    model = BetterRnnlm(V, D, D, dropout_ratio=0.5, seed=0)
    xs = np.arange(N * T).reshape(N, T) % V
    first = model.predict(xs, train_flg=False)  # dropout off from here on
    model.reset_state()
    np.testing.assert_array_equal(model.predict(xs), first)
    model.reset_state()
    model.forward(xs, xs, train_flg=True)  # on again, as the book's forward sets it
    assert all(layer.train_flg for layer in model.drop_layers)
    model.reset_state()
    assert not np.array_equal(model.predict(xs), first)


@pytest.mark.parametrize("name", ["simple", "lstm", "gru", "better"])
def test_build_model_by_name(name):
    model = build_model(name, 20, wordvec_size=8, hidden_size=8, seed=0)
    assert model.vocab_size == 20
    assert all(p.dtype == np.float32 for p in model.params)
    assert len(model.param_names) == len(model.params)


def test_uniform_init_scale():
    model = BetterRnnlm(V, D, H, dropout_ratio=0.0, tie_weights=False, init_scale=0.1, seed=0)
    for p in model.params:
        assert np.abs(p).max() <= 0.1 and p.std() > 0.02


# -- models.base.Model: what every model shares ----------------------------------------------


class TwoPartModel(Model):
    """A model that is not a language model: two parts, each with its own layers."""

    class Part:
        def __init__(self, layers):
            self.layers = layers
            self.params = [p for layer in layers for p in layer.params]
            self.grads = [g for layer in layers for g in layer.grads]

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)

        def randn(*shape):
            return rng.standard_normal(shape).astype(np.float32)

        self.config = {"seed": seed}
        self.encoder = self.Part([TimeEmbedding(randn(V, D)), TimeDropout(0.5),
                                  TimeRNN(randn(D, H), randn(H, H), randn(H))])
        self.decoder = self.Part([TimeRNN(randn(D, H), randn(H, H), randn(H), stateful=True),
                                  TimeAffine(randn(H, V), randn(V))])
        self.layers = [self.encoder, self.decoder]
        self._collect_params(["enc.embed.W", "enc.rnn.Wx", "enc.rnn.Wh", "enc.rnn.b",
                              "dec.rnn.Wx", "dec.rnn.Wh", "dec.rnn.b", "dec.affine.W",
                              "dec.affine.b"])


def test_model_base_reaches_layers_inside_parts():
    model = TwoPartModel()
    assert isinstance(model, Model) and not isinstance(model, LanguageModel)
    assert list(model.named_params()) == model.param_names
    dropout = model.encoder.layers[1]
    model.eval()
    assert dropout.train_flg is False
    model.train()
    assert dropout.train_flg is True
    h = np.ones((2, H), np.float32)
    model.decoder.layers[0].set_state(h)
    assert len(model.get_state()) == 2  # both TimeRNNs, inside their parts
    model.reset_state()
    assert model.get_state() == [None, None]


def test_evaluating_turns_dropout_off_and_gives_mode_and_state_back():
    model = BetterRnnlm(V, D, D, 0.5, seed=0)
    xs = np.arange(N * T).reshape(N, T) % V
    model.train()
    model.predict(xs)
    state = model.get_state()
    dropouts = [layer for layer in model.layers if isinstance(layer, TimeDropout)]
    with model.evaluating() as same:
        assert same is model
        assert all(layer.train_flg is False for layer in dropouts)
        model.reset_state()
        model.predict(np.zeros((1, 2), int))  # another batch size, another state
    assert all(layer.train_flg is True for layer in dropouts)
    for a, b in zip(model.get_state(), state, strict=True):
        assert np.array_equal(a, b)
    model.eval()
    with pytest.raises(KeyError), model.evaluating():
        raise KeyError("left by an exception")
    assert all(layer.train_flg is False for layer in dropouts)


def test_save_and_load_without_a_path_use_the_class_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = Rnnlm(V, D, H, seed=0)
    assert model.save_params() == "Rnnlm.npz"
    assert (tmp_path / "Rnnlm.npz").is_file()
    fresh = Rnnlm(V, D, H, seed=1)
    fresh.load_params()
    for a, b in zip(fresh.params, model.params, strict=True):
        assert np.array_equal(a, b)
    TwoPartModel().save_params()
    assert (tmp_path / "TwoPartModel.npz").is_file()
    with pytest.raises(FileNotFoundError, match=r"no such file: SimpleRnnlm\.npz \(load_params"):
        SimpleRnnlm(V, D, H).load_params()


@pytest.mark.parametrize("name", ["Rnnlm.pkl", "model.PKL", "x.pickle"])
def test_pickle_names_are_refused_with_the_way_to_convert(tmp_path, name):
    model = Rnnlm(V, D, H, seed=0)
    for call in (model.save_params, model.load_params):
        with pytest.raises(ValueError, match="never reads or writes pickles") as info:
            call(tmp_path / name)
        # (It said set_params_list(params): without from_book=True every LSTM
        # computes another function, silently.)
        assert "set_params_list(params, from_book=True)" in str(info.value)
        assert "Rnnlm.npz" in str(info.value)
    assert not any(tmp_path.iterdir())


def test_set_params_list_takes_the_books_params_order():
    """The book's pickles hold the params list; a tied array sits at two places
    (the book's second one is the transposed view)."""
    source = BetterRnnlm(V, D, D, 0.5, seed=0)
    book_list = [p.copy() for p in source.params]
    book_list[-2] = book_list[-2].T.astype(np.float16)  # the book's affine W is embed W.T
    model = BetterRnnlm(V, D, D, 0.5, seed=1)
    model.set_params_list(book_list)
    for a, b in zip(model.params, source.params, strict=True):
        assert np.array_equal(a, b)
    assert model.affine.params[0] is model.embed.params[0]
    with pytest.raises(ValueError, match="holds 3 arrays"):
        model.set_params_list(book_list[:3])


def book_lstm_step(x, h, c, Wx, Wh, b):
    """The book's LSTM step: its columns hold the gates in the order f, g, i, o."""
    H = h.shape[1]
    A = x @ Wx + h @ Wh + b
    f, g, i, o = (A[:, k * H:(k + 1) * H] for k in range(4))
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    c_next = sig(f) * c + np.tanh(g) * sig(i)
    return sig(o) * np.tanh(c_next), c_next


def to_book_gates(a):
    """rnnlab's (and PyTorch's) gate blocks i, f, g, o, in the book's order f, g, i, o."""
    i, f, g, o = np.split(a, 4, axis=-1)
    return np.concatenate([f, g, i, o], axis=-1)


def test_the_books_lstm_arrays_convert_with_from_book():
    rng = np.random.default_rng(0)
    Wx, Wh, b = rng.standard_normal((3, 8)), rng.standard_normal((2, 8)), rng.standard_normal(8)
    x, h, c = rng.standard_normal((4, 3)), rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    from layers import LSTM
    h_book, c_book = book_lstm_step(x, h, c, *(to_book_gates(a) for a in (Wx, Wh, b)))
    h_ours, c_ours = LSTM(Wx, Wh, b).forward(x, h, c)
    np.testing.assert_allclose(h_ours, h_book, rtol=1e-12)
    np.testing.assert_allclose(c_ours, c_book, rtol=1e-12)

    # A model's list as the book's pickle holds it: every LSTM's gates in its order.
    from models import AttentionSeq2seq
    source = AttentionSeq2seq(13, 4, 6, seed=0, bidirectional=True)
    lstm_arrays = {id(p) for layer in (source.encoder.lstm.forward_layer,
                                       source.encoder.lstm.backward_layer, source.decoder.lstm)
                   for p in layer.params}
    book_list = [to_book_gates(p) if id(p) in lstm_arrays else p.copy() for p in source.params]
    model = AttentionSeq2seq(13, 4, 6, seed=1, bidirectional=True)
    model.set_params_list(book_list, from_book=True)
    for a, b in zip(model.params, source.params, strict=True):
        np.testing.assert_array_equal(a, b)
    model.set_params_list(book_list)  # as rnnlab's own order: another model, silently
    assert not np.array_equal(model.decoder.lstm.params[0], source.decoder.lstm.params[0])


def test_check_params_changes_nothing_on_a_mismatch():
    model = SimpleRnnlm(V, D, H, seed=0)
    arrays = {k: np.zeros_like(p) for k, p in model.named_params().items()}
    arrays["rnn.Wh"] = np.zeros((H, H + 1), np.float32)
    before = [p.copy() for p in model.params]
    with pytest.raises(ValueError, match=r"'rnn\.Wh' has shape \(4, 5\), the model needs \(4, 4\)"):
        model.set_named_params(arrays, source="here")
    for a, b in zip(model.params, before, strict=True):
        assert np.array_equal(a, b)
    del arrays["rnn.Wh"]
    with pytest.raises(ValueError, match=r"here does not fit SimpleRnnlm: missing \['rnn\.Wh'\]"):
        model.check_params(arrays, source="here")


def test_set_named_params_takes_lists_and_check_params_names_a_value_that_is_not_an_array():
    # Both used to fail on a list with "AttributeError: 'list' object has no attribute 'shape'".
    model = SimpleRnnlm(V, D, H, seed=0)
    lists = {k: (p + 1).tolist() for k, p in model.named_params().items()}
    model.set_named_params(lists)
    np.testing.assert_array_equal(model.rnn.params[1], np.asarray(lists["rnn.Wh"], np.float32))
    with pytest.raises(TypeError, match=r"here: parameter 'embed\.W' is a list, not an array: "
                                        r"give np\.asarray\(\.\.\.\) of it"):
        model.check_params(lists, source="here")


def test_a_checkpoint_of_fit_says_how_to_write_a_model_from_it_in_python(tmp_path):
    # It named train_rnnlm.py --resume, which refuses a run it did not start.
    from common.optimizer import SGD
    from common.trainer import RnnlmTrainer

    ids = np.arange(60) % V
    RnnlmTrainer(SimpleRnnlm(V, D, H, seed=0), SGD(0.1)).fit(
        ids[:-1], ids[1:], max_epoch=1, batch_size=2, time_size=5, verbose=False,
        checkpoint=str(tmp_path / "ck.npz"))
    with pytest.raises(ValueError, match=r"ck\.npz is a training checkpoint, not a model file: "
                                         r".* trainer\.resume\(path\) with a trainer of its "
                                         r"model, then model\.save_params\(\.\.\.\)"):
        models.load_model(tmp_path / "ck.npz")


def test_model_classes_by_name_and_model_from_config():
    for name, cls in MODEL_CLASSES.items():
        assert cls.__name__ == name and issubclass(cls, Model)
    assert {"SimpleRnnlm", "Rnnlm", "GruRnnlm", "BetterRnnlm", "RnnlmGen",
            "BetterRnnlmGen"} <= set(MODEL_CLASSES)
    model = BetterRnnlm(V, D, D, 0.25, num_layers=1, seed=0)
    again = model_from_config("BetterRnnlm", model.config)
    assert type(again) is BetterRnnlm and again.config == model.config
    with pytest.raises(ValueError, match="unknown model class 'Nope'"):
        model_from_config("Nope", {})
    with pytest.raises(ValueError, match="does not fit Rnnlm"):
        model_from_config("Rnnlm", {"vocab_size": V, "colour": "red"})
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        model_from_config("Rnnlm", {"vocab_size": V, "hidden_size": 2.5})


@pytest.mark.parametrize("cls, kwargs", [
    (SimpleRnnlm, {}), (Rnnlm, {}), (GruRnnlm, {}),
    (BetterRnnlm, dict(dropout_ratio=0.5, num_layers=3)),
    (BetterRnnlm, dict(dropout_ratio=0.0, num_layers=1, tie_weights=False)),
])
def test_param_shapes_are_what_the_model_builds(cls, kwargs):
    model = cls(V, D, D, **kwargs, seed=0)
    built = {name: p.shape for name, p in model.named_params().items()}
    assert cls.param_shapes(model.config) == built


def test_vocab_size_comes_from_the_embedding_not_from_params_0():
    """Finding 11 (issue 12): params[0] need not be the embedding."""

    class OutputFirst(LanguageModel):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.config = {}
            embed = TimeEmbedding(rng.standard_normal((V, D)).astype(np.float32))
            rnn = TimeRNN(*(rng.standard_normal(s).astype(np.float32)
                            for s in ((D, H), (H, H), (H,))), stateful=True)
            affine = TimeAffine(rng.standard_normal((H, V)).astype(np.float32),
                                np.zeros(V, np.float32))
            self.layers = [embed, rnn, affine]
            self.loss_layer = TimeSoftmaxWithLoss()
            self.params = affine.params + embed.params + rnn.params
            self.grads = affine.grads + embed.grads + rnn.grads
            self.param_names = ["affine.W", "affine.b", "embed.W", "rnn.Wx", "rnn.Wh", "rnn.b"]

    model = OutputFirst()
    assert model.params[0].shape == (H, V)
    assert model.vocab_size == V
    assert len(model.generate([1], 5, rng=0)) == 5


def test_the_books_argument_order_for_better_rnnlm():
    """The book calls BetterRnnlm(vocab_size, wordvec_size, hidden_size, dropout_ratio)."""
    model = BetterRnnlm(V, D, D, 0.3)
    assert model.config["dropout_ratio"] == 0.3 and model.config["num_layers"] == 2
    assert model.config["tie_weights"] is True
    with pytest.raises(TypeError):
        BetterRnnlm(V, D, D, 0.3, 2)  # rnnlab's own arguments are keyword-only
    with pytest.raises(ValueError, match="dropout_ratio must be in"):
        BetterRnnlm(V, D, D, 1.0)
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        BetterRnnlm(V, D, D, 0.5, num_layers=0)


def test_the_books_attribute_names():
    simple, lstm, better = SimpleRnnlm(V, D, H), Rnnlm(V, D, H), BetterRnnlm(V, D, D, 0.5)
    assert simple.rnn_layer is simple.rnn and lstm.lstm_layer is lstm.lstm
    assert better.lstm_layers == better.lstms and len(better.lstm_layers) == 2
    assert len(better.drop_layers) == 3
    assert all(isinstance(layer, TimeDropout) for layer in better.drop_layers)


def test_set_state_restores_get_state_and_refuses_a_state_of_another_shape():
    model = BetterRnnlm(V, D, H, num_layers=2, seed=0)  # two LSTMs: h, c, h, c
    model.forward(np.zeros((N, T), dtype=np.int64), np.zeros((N, T), dtype=np.int64))
    state = model.get_state()
    assert len(state) == 4
    model.reset_state()
    model.set_state(state)
    for a, b in zip(model.get_state(), state, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="takes the list get_state.. returns: 4 entries .* "
                                         "got 3 entries"):
        model.set_state(state[:3])
    with pytest.raises(ValueError, match="got NoneType"):
        model.set_state(None)
    wide = list(state)
    wide[2] = np.zeros((N, H + 1), np.float32)
    with pytest.raises(ValueError, match=r"state\[2\] \(TimeLSTM.h\) has shape \(2, 5\), 5 "
                                         "units, but the layer has H = 4"):
        model.set_state(wide)
    with pytest.raises(TypeError, match=r"state\[1\] \(TimeLSTM.c\) has dtype float64"):
        model.set_state([state[0], state[1].astype(np.float64), *state[2:]])
    model.set_state([None] * 4)  # nothing carried: the next batch starts from zeros
    assert model.get_state() == [None] * 4
