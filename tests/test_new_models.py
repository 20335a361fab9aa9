"""Models of one's own, built from rnnlab's layers and parts: what the
library promises them (exact resume, generation, carried state) holds, not
only for its own models.

- A part with its own ``layers`` (here a residual block with a dropout
  inside) gets its dropout's random generator into the checkpoint, so a
  resumed run draws the same masks.
- A recurrent layer of one's own (any object with ``h``, ``reset_state``
  and ``stateful``) has its state carried, set and checkpointed without
  rnnlab assuming it holds an LSTM's ``Wh``.
"""

import numpy as np
import pytest

from common.gradcheck import check_function, check_layer
from common.inspection import gradient_through_time, model_units, record_states
from common.optimizer import Adam
from common.trainer import RnnlmTrainer
from layers import (
    TimeAffine,
    TimeDropout,
    TimeEmbedding,
    TimeGRU,
    TimeLSTM,
    TimeRNN,
    TimeSoftmaxWithLoss,
)
from models import MODEL_CLASSES, LanguageModel, Seq2seq, load_model, model_from_config
from models.seq2seq import Decoder, Encoder, gather_layers
from tests.replicable_example import GruSeq2seq

V, H = 17, 16


class Residual:
    """``y = x + dropout(inner(x))``: a part that lists its own layers."""

    def __init__(self, inner, ratio, rng):
        self.inner, self.drop = inner, TimeDropout(ratio, rng=rng)
        self.layers = [inner, self.drop]
        self.params, self.grads = inner.params, inner.grads

    def forward(self, x):
        return x + self.drop.forward(self.inner.forward(x))

    def backward(self, dy):
        return dy + self.inner.backward(self.drop.backward(dy))


class TimeDecay:
    """``h_t = a * h_{t-1} + (1 - a) * x_t`` over the steps, one rate ``a`` per
    unit: a recurrent layer of one's own, whose only parameter is ``a``.

    Backward: ``dh_{t-1} += a * dh_t``, ``dx_t = (1 - a) * dh_t`` and
    ``da = sum over t of dh_t * (h_{t-1} - x_t)``.
    """

    def __init__(self, a, stateful=True):
        self.params, self.grads = [a], [np.zeros_like(a)]
        self.stateful, self.h = stateful, None

    def reset_state(self):
        self.h = None

    def forward(self, xs):
        (a,) = self.params
        h = np.zeros((len(xs), len(a)), xs.dtype) if self.h is None else self.h
        self.xs, self.h0, hs = xs, h, np.empty_like(xs)
        for t in range(xs.shape[1]):
            h = hs[:, t] = a * h + (1 - a) * xs[:, t]
        self.hs = hs
        self.h = h.copy() if self.stateful else None
        return hs

    def backward(self, dhs):
        (a,) = self.params
        dxs, dh, da = np.empty_like(dhs), np.zeros_like(dhs[:, 0]), np.zeros_like(a)
        for t in reversed(range(dhs.shape[1])):
            dh = dh + dhs[:, t]
            h_prev = self.hs[:, t - 1] if t else self.h0
            da += (dh * (h_prev - self.xs[:, t])).sum(axis=0)
            dxs[:, t] = (1 - a) * dh
            dh = a * dh
        self.grads[0][...] = da
        return dxs


class ResidualLM(LanguageModel):
    def __init__(self, dropout=0.0, seed=0):
        rng = np.random.default_rng(seed)

        def r(*shape):
            return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)

        self.config = {"dropout": dropout}
        lstm = TimeLSTM(r(H, 4 * H), r(H, 4 * H), np.zeros(4 * H, np.float32), stateful=True)
        self.layers = [TimeEmbedding(r(V, H)),
                       Residual(lstm, dropout, np.random.default_rng(seed + 1)),
                       TimeAffine(r(H, V), np.zeros(V, np.float32))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "res.lstm.Wx", "res.lstm.Wh", "res.lstm.b",
                              "affine.W", "affine.b"])


class DecayLM(LanguageModel):
    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.config = {}
        self.layers = [TimeEmbedding(rng.standard_normal((V, H)).astype(np.float32) * 0.1),
                       TimeDecay(np.full(H, 0.5, np.float32)),
                       TimeAffine(rng.standard_normal((H, V)).astype(np.float32) * 0.1,
                                  np.zeros(V, np.float32))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "decay.a", "affine.W", "affine.b"])


CORPUS = np.random.default_rng(0).integers(0, V, 3000)
FIT = dict(max_epoch=50, batch_size=4, time_size=5, verbose=False)


def train(model, iters, checkpoint=None, resume=None):
    trainer = RnnlmTrainer(model, Adam(0.01))
    if resume:
        trainer.resume(resume)
    trainer.fit(CORPUS[:-1], CORPUS[1:], max_iters=iters, checkpoint=checkpoint, **FIT)
    return model


@pytest.mark.parametrize("make", [lambda s: ResidualLM(0.3, s), DecayLM],
                         ids=["dropout-inside-a-part", "recurrent-layer-of-ones-own"])
def test_a_model_of_ones_own_resumes_exactly(make, tmp_path):
    # (The dropout inside the part was left out of the checkpoint: other masks.)
    straight = train(make(0), 12)
    path = tmp_path / "ck.npz"
    train(make(0), 6, checkpoint=path)
    resumed = train(make(7), 12, checkpoint=path, resume=path)
    for a, b in zip(straight.params, resumed.params, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_recurrent_layer_of_ones_own_carries_and_takes_a_state():
    # (set_state read params[1] as an LSTM's Wh: an IndexError from generate.)
    model = DecayLM()
    model.predict(np.array([[1, 2, 3]]))
    state = model.get_state()
    assert len(state) == 1 and state[0].shape == (1, H)
    model.set_state(state)
    assert len(model.generate([1, 2], 4)) == 4
    with pytest.raises(ValueError, match=r"must have shape \(N, H\)"):
        model.set_state([np.zeros(H, np.float32)])


@pytest.mark.parametrize("make, has_cell", [(DecayLM, False), (ResidualLM, True)],
                         ids=["recurrent-layer-of-ones-own", "recurrent-layer-inside-a-part"])
def test_inspection_records_the_states_of_a_model_of_ones_own(make, has_cell):
    # (It read params[1] as an LSTM's Wh, an IndexError here, and looked for
    # recurrent layers only in model.layers: "no recurrent layer to record".)
    model, ids = make(), np.array([3, 1, 4, 1, 5, 9, 2, 6])
    assert model_units(model) == ([H], [has_cell])
    rec = record_states(model, ids)
    assert rec.hidden[0].shape == (len(ids), H)
    assert (rec.cell[0] is not None) == has_cell
    model.reset_state()
    model.predict(ids[None])  # one forward over the whole text: the same last state
    np.testing.assert_allclose(rec.hidden[0][-1], model.get_state()[0][0], rtol=1e-5,
                               atol=1e-6)


def test_model_units_of_rnnlabs_layers_computes_nothing():
    # (Reading the widths from a step replaced what forward left for backward.)
    from models import Rnnlm

    model, xs = Rnnlm(30, 8, 12, seed=0), np.array([[1, 2, 3]])
    model.forward(xs, xs)
    assert model_units(model) == ([12], [True])
    model.backward()  # still the forward's
    rec = record_states(model, np.array([], np.int64))  # no step: the widths all the same
    assert rec.hidden[0].shape == (0, 12) and rec.cell[0].shape == (0, 12)


def test_the_gradient_through_time_of_a_model_it_cannot_read_says_why():
    xs = np.array([[3, 1, 4, 1]])
    with pytest.raises(ValueError, match=r"ResidualLM's top recurrent layer, a TimeLSTM, is "
                                         r"inside a part, not in model.layers"):
        gradient_through_time(ResidualLM(), xs, xs)
    with pytest.raises(ValueError, match=r"TimeDecay keeps no dh after its backward .* set "
                                         r"self.dh in its backward"):
        gradient_through_time(DecayLM(), xs, xs)


def test_the_layer_of_ones_own_has_exact_gradients():
    rng = np.random.default_rng(1)
    layer = TimeDecay(rng.uniform(0.2, 0.8, H), stateful=False)
    errors = check_layer(layer, [rng.standard_normal((3, 5, H))])
    assert max(errors.values()) < 1e-6, errors


# -- a GRU encoder-decoder, by subclassing the textbook's Seq2seq -----------------------------


# tests/replicable_example.py holds it (a module of its own, which a helper process
# can import to compute half of each batch): GruEncoder and GruDecoder each override
# the one method that builds the recurrent layer, _lstm(init, D, H), to return a
# TimeGRU; GruSeq2seq names them as its encoder_class and decoder_class.


def test_a_gru_seq2seq_is_two_overridden_methods():
    # (Before: no parameter names for TimeGRU, no hook in the decoder, and beam
    # search read an LSTM's c.)
    model = GruSeq2seq(13, 5, 6, seed=0, dtype=np.float64)
    assert model.param_names[:5] == ["encoder.embed.W", "encoder.gru.Wx", "encoder.gru.Wh",
                                     "encoder.gru.bx", "encoder.gru.bh"]
    xs = assert_exact_gradients(model, seed=1)
    greedy = model.generate(xs, 1, 4)
    np.testing.assert_array_equal(model.generate(xs, 1, 4, beam_width=1), greedy)
    assert model.generate(xs, 1, 4, beam_width=3).shape == (3, 4)


def assert_exact_gradients(model, seed):
    """Check a float64 encoder-decoder of vocabulary 13 against central
    differences, on weights of ordinary size (see the README); return the
    questions ``(3, 4)`` it was checked on."""
    rng = np.random.default_rng(seed)
    for p in model.params:
        p[...] = rng.standard_normal(p.shape) * 0.5
    xs, ts = rng.integers(0, 13, (3, 4)), rng.integers(0, 13, (3, 5))

    def backward():
        model.forward(xs, ts)
        model.backward()
        return [g.copy() for g in model.grads]

    assert max(check_function(lambda: model.forward(xs, ts), backward, model.params)) < 1e-6
    return xs


class RnnEncoder(Encoder):
    def _lstm(self, init, D, H):
        return TimeRNN(init.normal((D, H), 1 / np.sqrt(D)), init.normal((H, H), 1 / np.sqrt(H)),
                       init.zeros(H), stateful=False)


class RnnDecoder(Decoder):
    def _lstm(self, init, D, H):
        return TimeRNN(init.normal((D, H), 1 / np.sqrt(D)), init.normal((H, H), 1 / np.sqrt(H)),
                       init.zeros(H), stateful=True)


class RnnSeq2seq(Seq2seq):
    encoder_class, decoder_class = RnnEncoder, RnnDecoder


def test_a_plain_rnn_seq2seq_too():
    # (Before: no parameter names for TimeRNN.)
    model = RnnSeq2seq(13, 5, 6, seed=0, dtype=np.float64)
    assert model.param_names[1:4] == ["encoder.rnn.Wx", "encoder.rnn.Wh", "encoder.rnn.b"]
    xs = assert_exact_gradients(model, seed=2)
    np.testing.assert_array_equal(model.generate(xs, 1, 4, beam_width=1),
                                  model.generate(xs, 1, 4))


def test_a_gru_seq2seq_of_ones_own_saves_and_loads(tmp_path, monkeypatch):
    # A class of one's own is registered in MODEL_CLASSES to be loadable. Its
    # parameters are not the LSTM ones Seq2seq.param_shapes describes, so its
    # file is checked against the model once built. (Before: load_model refused
    # the file, comparing it with the shapes of an LSTM Seq2seq.)
    monkeypatch.setitem(MODEL_CLASSES, "GruSeq2seq", GruSeq2seq)
    model = GruSeq2seq(13, 5, 6, seed=0)
    path = tmp_path / "gru_seq2seq.npz"
    model.save_params(path)
    loaded, _ = load_model(path)
    assert type(loaded) is GruSeq2seq
    for name, p in model.named_params().items():
        np.testing.assert_array_equal(loaded.named_params()[name], p)

    # A file whose arrays do not fit the model is still refused, by name.
    arrays = dict(np.load(path))
    arrays["encoder.gru.Wh"] = arrays["encoder.gru.Wh"][:, :6]
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="encoder.gru.Wh"):
        load_model(path)


class DeclaredGruSeq2seq(GruSeq2seq):
    """A class of one's own that says its shapes: files are checked before building."""

    @classmethod
    def param_shapes(cls, config):
        return {name: p.shape for name, p in GruSeq2seq(**config).named_params().items()}


def test_a_class_that_declares_its_shapes_is_checked_before_building(monkeypatch):
    monkeypatch.setitem(MODEL_CLASSES, "DeclaredGruSeq2seq", DeclaredGruSeq2seq)
    config = {"vocab_size": 13, "wordvec_size": 5, "hidden_size": 6}
    with pytest.raises(ValueError, match="missing"):
        model_from_config("DeclaredGruSeq2seq", config, shapes={"encoder.embed.W": (13, 5)})


class TwoLayerLstmEncoder(Encoder):
    """The encoder with a second LSTM over the first one's states."""

    def __init__(self, vocab_size, wordvec_size, hidden_size, init=None):
        super().__init__(vocab_size, wordvec_size, hidden_size, init)
        self.lstm1, self.lstm = self.lstm, self._lstm(init, hidden_size, hidden_size)
        gather_layers(self, [self.embed, self.lstm1, self.lstm])

    def forward(self, xs):
        self.hs = self.lstm.forward(self.lstm1.forward(self.embed.forward(xs)))
        return self.hs[:, -1, :]

    def backward(self, dh):
        dhs = np.zeros_like(self.hs)
        dhs[:, -1, :] = dh
        self.embed.backward(self.lstm1.backward(self.lstm.backward(dhs)))


class DeepSeq2seq(Seq2seq):
    encoder_class = TwoLayerLstmEncoder


class MyLSTM(TimeLSTM):
    """A TimeLSTM of one's own: named as one (lstm, lstm2, ...)."""


class MixedLstmEncoder(TwoLayerLstmEncoder):
    def _lstm(self, init, D, H):
        lstm = super()._lstm(init, D, H)
        return MyLSTM(*lstm.params) if D == H else lstm  # the second layer's


class MixedSeq2seq(Seq2seq):
    encoder_class = MixedLstmEncoder


def test_two_layers_of_a_kind_in_a_part_get_names_of_their_own(tmp_path):
    """Both LSTMs of the encoder were named encoder.lstm.*: named_params kept
    one of them, and save, load, checkpoints and the best epoch's restore
    silently left the other out."""
    assert MixedSeq2seq(13, 5, 6).param_names == DeepSeq2seq(13, 5, 6).param_names
    model = DeepSeq2seq(13, 5, 6, seed=0)
    assert model.param_names[:7] == ["encoder.embed.W", "encoder.lstm.Wx", "encoder.lstm.Wh",
                                     "encoder.lstm.b", "encoder.lstm2.Wx", "encoder.lstm2.Wh",
                                     "encoder.lstm2.b"]
    assert len(model.named_params()) == len(model.params)
    model.save_params(tmp_path / "deep.npz")
    loaded = DeepSeq2seq(13, 5, 6, seed=1)
    loaded.load_params(tmp_path / "deep.npz")
    for p, q in zip(model.params, loaded.params, strict=True):
        np.testing.assert_array_equal(p, q)


def test_one_name_for_two_arrays_is_refused():
    class Twice(LanguageModel):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.layers = [TimeEmbedding(rng.standard_normal((5, 3))),
                           TimeAffine(rng.standard_normal((3, 5)), np.zeros(5))]
            self._collect_params(["W", "W", "b"])

    with pytest.raises(ValueError, match="'W' names two different arrays.*params\\[0\\] and "
                                         "params\\[1\\]"):
        Twice()


@pytest.mark.parametrize("beam_width", [1, 3])
def test_a_decoder_whose_recurrent_layer_is_not_stateful_still_generates_step_after_step(
        beam_width):
    """Generating feeds the decoder one step at a time: a layer that starts
    every call from zeros answered every step after the first from nothing,
    silently (training was right). The state is carried whatever the flag."""
    from tests.replicable_example import GruEncoder, gru_weights

    class ForgetfulGruDecoder(Decoder):
        def _lstm(self, init, D, H):
            return TimeGRU(*gru_weights(init, D, H))  # stateful=False, the layer's default

    class ForgetfulGruSeq2seq(Seq2seq):
        encoder_class, decoder_class = GruEncoder, ForgetfulGruDecoder

    model, stateful = ForgetfulGruSeq2seq(13, 5, 6, seed=0), GruSeq2seq(13, 5, 6, seed=0)
    for p, q in zip(model.params, stateful.params, strict=True):
        p[...] = q[...] = np.random.default_rng(p.size).standard_normal(p.shape)
    xs = np.random.default_rng(1).integers(0, 13, (4, 5))
    answers = model.generate(xs, 1, 5, beam_width=beam_width)
    np.testing.assert_array_equal(answers, stateful.generate(xs, 1, 5, beam_width=beam_width))
    assert model.decoder.lstm.stateful is False  # as it was
    if beam_width == 1:  # the decoder's own training computation, answer by answer
        ids = np.ones((4, 1), dtype=np.int64)
        for _ in range(5):
            scores = model.decoder.forward(ids, model.encoder.forward(xs))
            ids = np.concatenate([ids, scores[:, -1].argmax(axis=1)[:, None]], axis=1)
        np.testing.assert_array_equal(answers, ids[:, 1:])
