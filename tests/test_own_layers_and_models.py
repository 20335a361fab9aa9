"""Layers and models of one's own: what rnnlab checks of the layer contract
(``params``/``grads`` lists, a forward that returns the loss, a backward that
writes into ``grads``), so that a mistake is an error naming it, not a model
that silently trains wrong.

- ``check_layer`` refuses a ``backward`` that rebinds ``self.grads[i]`` (an
  optimizer holds the old array: the parameter would never train), checks
  layers with several outputs (the LSTM cell's ``h`` and ``c``), and names a
  gradient of the wrong shape; and a backward that changes its ``dout`` in
  place, adds into ``grads`` or follows a forward that is not one function
  (dropout, a used-up ``set_state``); one array given as two inputs
  (self-attention) is checked by the sum of its gradients;
- ``check_function`` refuses a ``loss`` that gives another value on a second
  call (a stateful model carries its state from call to call);
- both refuse a layer that reads the ``grads`` of a layer inside it before
  the work deferred to another core is done (``finish_deferred``);
- a model's ``forward`` must return one number, refused at the first batch;
- ``_collect_params`` names a layer whose ``grads`` do not match its ``params``;
- a model's ``params``/``grads`` stay the layers' own arrays: putting another
  array in the model's list is refused, and one put in a layer's list (or a
  ``backward`` that rebinds a gradient) is named by the trainer before its
  first update and by ``save_params``;
- a stateful optimizer refuses two arrays over one memory (the book's
  ``TimeAffine(W.T, b)`` tying), which it would step twice;
- ``load_model`` builds a registered class that takes no ``seed``.
"""

import copy
import sys

import numpy as np
import pytest

import models
from common.gradcheck import check_function, check_layer
from common.optimizer import SGD, Adam, Momentum
from common.parallel import deferred, finish_deferred, later
from common.trainer import RnnlmTrainer
from common.util import eval_perplexity
from layers import LSTM, TimeAffine, TimeEmbedding, TimeLSTM, TimeRNN, TimeSoftmaxWithLoss
from models import LanguageModel, Rnnlm


class Scale:
    """``y = x * g``, one gain per feature: a layer of one's own.

    Shape: x ``(N, T, D)``, g ``(D,)`` -> y ``(N, T, D)``.
    """

    def __init__(self, g):
        self.params, self.grads = [g], [np.zeros_like(g)]

    def forward(self, x):
        self.x = x
        return x * self.params[0]

    def backward(self, dy):
        self.grads[0][...] = (dy * self.x).sum(axis=(0, 1))  # into the array, never rebound
        return dy * self.params[0]


class RebindingScale(Scale):
    def backward(self, dy):
        self.grads[0] = (dy * self.x).sum(axis=(0, 1))  # wrong: a new array
        return dy * self.params[0]


class ScaledRnnlm(LanguageModel):
    def __init__(self, V=20, H=8, seed=0):
        rng = np.random.default_rng(seed)

        def randn(*shape):
            return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)

        self.config = {"V": V, "H": H}
        self.layers = [TimeEmbedding(randn(V, H)),
                       TimeRNN(randn(H, H), randn(H, H), np.zeros(H, np.float32), stateful=True),
                       Scale(np.ones(H, np.float32)),
                       TimeAffine(randn(H, V), np.zeros(V, np.float32))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "rnn.Wx", "rnn.Wh", "rnn.b", "scale.g", "affine.W",
                              "affine.b"])


def fit_one_epoch(model):
    corpus = np.random.default_rng(2).integers(0, 20, 300)
    RnnlmTrainer(model, SGD(0.1)).fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=4,
                                      time_size=5, verbose=False)


# -- check_layer ----------------------------------------------------------------------


def test_check_layer_passes_a_layer_that_writes_into_its_grads():
    rng = np.random.default_rng(0)
    errors = check_layer(Scale(rng.standard_normal(5)), [rng.standard_normal((2, 3, 5))])
    assert max(errors.values()) < 1e-7


def test_check_layer_refuses_a_backward_that_rebinds_its_grads():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"RebindingScale.backward rebinds self.grads\[0\] "
                                         r"\(a new array\) instead of writing into it"):
        check_layer(RebindingScale(rng.standard_normal(5)), [rng.standard_normal((2, 3, 5))])


def test_the_gradient_checks_name_a_read_only_array_as_the_caller_gave_it():
    # It used to be "numerical_gradient perturbs x in place ... pass the array f reads":
    # names the caller never used.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5))
    x.flags.writeable = False
    with pytest.raises(ValueError, match=r"check_layer perturbs inputs\[0\] in place .* "
                                         r"read-only .* writable copy, e\.g\. x\.copy\(\)"):
        check_layer(Scale(rng.standard_normal(5)), [x])
    g = rng.standard_normal(5)
    g.flags.writeable = False
    with pytest.raises(ValueError, match=r"check_layer perturbs layer\.params\[0\] in place"):
        check_layer(Scale(g), [x.copy()])
    with pytest.raises(ValueError, match=r"check_function perturbs arrays\[0\] in place"):
        check_function(lambda: float(g.sum()), lambda: [np.ones(5)], [g])


def test_check_layer_checks_a_layer_with_two_outputs():
    # The LSTM cell returns (h_next, c_next) and takes backward(dh_next, dc_next).
    rng = np.random.default_rng(0)
    cell = LSTM(rng.standard_normal((3, 16)), rng.standard_normal((4, 16)),
                rng.standard_normal(16))
    inputs = [rng.standard_normal((2, 3)), rng.standard_normal((2, 4)),
              rng.standard_normal((2, 4))]
    errors = check_layer(cell, inputs)
    assert set(errors) == {"param0", "param1", "param2", "input0", "input1", "input2"}
    assert max(errors.values()) < 1e-7


def test_check_layer_names_a_gradient_of_the_wrong_shape():
    class SummedScale(Scale):
        def __init__(self, g):
            super().__init__(g)
            self.grads = [np.zeros((1, g.size))]  # (1, D): the wrong shape

        def backward(self, dy):
            self.grads[0][...] = (dy * self.x).sum(axis=(0, 1))
            return dy * self.params[0]

    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"SummedScale.grads\[0\] has shape \(1, 5\) but "
                                         r"params\[0\] has shape \(5,\)"):
        check_layer(SummedScale(rng.standard_normal(5)), [rng.standard_normal((2, 3, 5))])


class DoublingScale(Scale):
    def backward(self, dy):
        dy *= 2  # wrong: every gradient twice too large, and dout changed in place
        return super().backward(dy)


class AddingScale(Scale):
    def backward(self, dy):
        self.grads[0][...] += (dy * self.x).sum(axis=(0, 1))  # wrong: adds, never overwrites
        return dy * self.params[0]


def test_check_layer_finds_a_backward_that_changes_its_dout_in_place():
    # (It passed: the weighting of the differences was the dout that backward doubled.)
    rng = np.random.default_rng(0)
    errors = check_layer(DoublingScale(rng.standard_normal(5)), [rng.standard_normal((2, 3, 5))])
    assert errors["param0"] == pytest.approx(0.5) and errors["input0"] == pytest.approx(0.5)


def test_check_layer_and_check_function_refuse_a_backward_that_adds_into_its_grads():
    # The optimizers never zero the gradients: a layer that adds into them
    # would train on gradients growing at every step. One backward from zeros
    # looked right.
    rng = np.random.default_rng(0)
    layer, xs = AddingScale(rng.standard_normal(5)), rng.standard_normal((2, 3, 5))
    with pytest.raises(ValueError, match=r"AddingScale.backward gave another self.grads\[0\] "
                                         r"the second time.*adds into the array"):
        check_layer(layer, [xs])
    w = rng.standard_normal((2, 3, 5))

    def loss():
        return float((w * layer.forward(xs)).sum())

    def backward():
        loss()
        return [*layer.grads, layer.backward(w)]

    with pytest.raises(ValueError, match=r"backward\(\) gave another gradient for arrays\[0\] "
                                         r"the second time.*adds into its grads"):
        check_function(loss, backward, [*layer.params, xs])


def test_check_layer_refuses_a_forward_that_is_not_one_function():
    # A right layer was reported wrong (errors of 0.3-1.0): dropout drew new
    # masks at each forward, and a set_state was used up by the first one.
    from layers import TimeDropout, TimeLSTM

    rng = np.random.default_rng(0)
    xs = rng.standard_normal((2, 3, 4))
    with pytest.raises(ValueError, match=r"TimeDropout.forward gave another output the second "
                                         r"time.*train_flg=False"):
        check_layer(TimeDropout(0.5), [xs])
    dropout = TimeDropout(0.5)
    dropout.train_flg = False
    assert check_layer(dropout, [xs])["input0"] < 1e-7
    lstm = TimeLSTM(rng.standard_normal((4, 8)), rng.standard_normal((2, 8)),
                    rng.standard_normal(8))
    lstm.set_state(rng.standard_normal((2, 2)), rng.standard_normal((2, 2)))
    with pytest.raises(ValueError, match=r"TimeLSTM.forward gave another output.*check_function"):
        check_layer(lstm, [xs])


def test_check_layer_checks_one_array_given_as_two_inputs_by_the_sum():
    # Self-attention: TimeAttention(hs_dec=hs, hs_enc=hs). Each place's own
    # gradient was compared with the differences of both (errors of 0.26 and 0.98).
    from layers import Concat, TimeAttention

    hs = np.random.default_rng(0).standard_normal((2, 5, 4))
    for layer in (TimeAttention(), Concat()):
        errors = check_layer(layer, [hs, hs])
        assert max(errors.values()) < 1e-7, (type(layer).__name__, errors)
    with pytest.raises(ValueError, match="inputs 0 and 1 are one array.*list both"):
        check_layer(TimeAttention(), [hs, hs], check_inputs=[1])
    with pytest.raises(ValueError, match="inputs 0 and 1 share memory"):
        check_layer(TimeAttention(), [hs, hs[:, ::-1]])


def test_a_non_finite_output_is_said_to_be_one_not_called_random():
    # (A deterministic layer whose output held NaN or inf was told that it is
    # "not one function", and pointed at dropout.)
    class Log:
        params, grads = [], []

        def forward(self, x):
            self.x = x
            return np.log(x)

        def backward(self, dy):
            return dy / self.x

    with np.errstate(invalid="ignore"), pytest.raises(ValueError, match=r"Log.forward's "
                                                                        r"output is not finite "
                                                                        r"\(nan\).*negative"):
        check_layer(Log(), [np.array([1.0, -1.0])])
    with np.errstate(invalid="ignore"), pytest.raises(ValueError, match=r"loss\(\) is not "
                                                                        r"finite"):
        x = np.array([-1.0])
        check_function(lambda: float(np.log(x)[0]), lambda: [1 / x], [x])


# -- check_function ---------------------------------------------------------------------


class CopyingAffine:
    """A ``TimeAffine`` inside a layer of one's own, whose ``grads`` are its own
    arrays, copied from the inner layer's (``finish``: after
    :func:`common.parallel.finish_deferred`, as a layer that reads them must).

    Shape: as ``TimeAffine``'s, x ``(N, T, D)`` -> y ``(N, T, M)``.
    """

    def __init__(self, W, b, finish):
        self.inner, self.finish = TimeAffine(W, b), finish
        self.params, self.grads = [W, b], [np.zeros_like(W), np.zeros_like(b)]

    def forward(self, xs):
        return self.inner.forward(xs)

    def backward(self, dys):
        dxs = self.inner.backward(dys)
        if self.finish:
            finish_deferred()
        for g, inner_g in zip(self.grads, self.inner.grads, strict=True):
            g[...] = inner_g
        return dxs


class SmallLm(LanguageModel):
    """Embedding, LSTM and an output layer ``affine(W, b)``: (N, T) ids -> loss."""

    def __init__(self, affine, V=7, H=4):
        rng = np.random.default_rng(0)
        def randn(*shape):
            return rng.standard_normal(shape) * 0.5
        self.config = {"V": V, "H": H}
        self.layers = [TimeEmbedding(randn(V, H)),
                       TimeLSTM(randn(H, 4 * H), randn(H, 4 * H), randn(4 * H), stateful=True),
                       affine(randn(H, V), randn(V))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "lstm.Wx", "lstm.Wh", "lstm.b", "W", "b"])


def test_a_layer_that_reads_an_inner_layers_grads_early_is_refused():
    # Inside a model's backward, TimeAffine may leave its weight gradient to an
    # idle core: a layer that copied it at once got zeros or half of it in
    # training (a race), and both checks, where nothing is deferred, passed it.
    rng = np.random.default_rng(0)
    W, b, xs = rng.standard_normal((4, 5)), rng.standard_normal(5), rng.standard_normal((2, 3, 4))
    with pytest.raises(ValueError, match=r"CopyingAffine.backward gave another self.grads\[0\] "
                                         r"when the layers inside it finished .* late.*"
                                         r"finish_deferred\(\)"):
        check_layer(CopyingAffine(W, b, finish=False), [xs])
    assert max(check_layer(CopyingAffine(W, b, finish=True), [xs]).values()) < 1e-6

    ids = rng.integers(0, 7, (2, 3))
    for finish in (False, True):
        model = SmallLm(lambda W, b, finish=finish: CopyingAffine(W, b, finish))

        def loss(model=model):
            model.reset_state()
            return model.forward(ids, ids)

        def backward(model=model):
            loss()
            model.backward()  # the model's backward: its layers' grads complete on return
            return [g.copy() for g in model.grads]

        if finish:
            assert max(check_function(loss, backward, model.params)) < 1e-6
        else:
            with pytest.raises(ValueError, match=r"gradient for arrays\[4\] when the layers"):
                check_function(loss, backward, model.params)


class ScaledLater:
    """``TimeAffine`` whose weight gradients are halved by deferred tasks of
    its own: on the inner layer's arrays (``on_inner``: they read what the
    inner layer's deferred tasks write, a race on several cores) or in place
    on its own copy once complete (``later(..., out=g)`` reading ``g``: allowed).
    """

    def __init__(self, W, b, on_inner):
        self.inner, self.on_inner = TimeAffine(W, b), on_inner
        self.params, self.grads = [W, b], [np.zeros_like(W), np.zeros_like(b)]

    def forward(self, xs):
        return 0.5 * self.inner.forward(xs)

    def backward(self, dys):
        dxs = self.inner.backward(dys)
        if not self.on_inner:
            finish_deferred()
        for g, inner_g in zip(self.grads, self.inner.grads, strict=True):
            if self.on_inner:
                later(np.multiply, inner_g, 0.5, out=g)
            else:
                g[...] = inner_g
                later(np.multiply, g, 0.5, out=g)
        return 0.5 * dxs


@pytest.mark.parametrize("on_inner", [True, False], ids=["reads-another-task's-out", "own-out"])
def test_a_deferred_task_that_reads_another_tasks_output_is_refused(on_inner):
    # The check runs the kept tasks last first, each on its out as queued: a
    # task that read another's output passed when they ran in queue order.
    rng = np.random.default_rng(0)
    layer = ScaledLater(rng.standard_normal((4, 5)), rng.standard_normal(5), on_inner)
    xs = rng.standard_normal((2, 3, 4))
    if on_inner:
        with pytest.raises(ValueError, match=r"finished their weight gradients late"):
            check_layer(layer, [xs])
    else:
        assert max(check_layer(layer, [xs]).values()) < 1e-6
        with deferred():  # (inside a context of the caller's, as well)
            assert max(check_layer(layer, [xs]).values()) < 1e-6


def test_finish_deferred_completes_the_work_queued_so_far():
    from common.parallel import _postponing

    rng = np.random.default_rng(0)
    layer = TimeAffine(rng.standard_normal((4, 5)), rng.standard_normal(5))
    xs, dys = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 5))
    layer.forward(xs)
    layer.backward(dys)
    expected = [g.copy() for g in layer.grads]
    with _postponing(), deferred():  # every deferred task kept to the end
        layer.backward(dys)
        assert np.isnan(layer.grads[0]).all()  # not done yet
        finish_deferred()
        for g, e in zip(layer.grads, expected, strict=True):
            np.testing.assert_array_equal(g, e)
    finish_deferred()  # outside the context: nothing to do


def test_check_function_refuses_a_loss_that_changes_from_call_to_call():
    model = Rnnlm(12, 4, 5, seed=0, dtype=np.float64, init_scale=0.5)
    rng = np.random.default_rng(0)
    xs, ts = rng.integers(0, 12, (2, 3)), rng.integers(0, 12, (2, 3))

    def backward():
        model.forward(xs, ts)
        model.backward()
        return model.grads

    with pytest.raises(ValueError, match=r"loss\(\) gave .* then .*: not one function.*"
                                         r"reset_state\(\)"):
        check_function(lambda: model.forward(xs, ts), backward, model.params)

    # As the docstring says: each call starts from a reset state.
    def loss():
        model.reset_state()
        return model.forward(xs, ts)

    def backward_from_reset():
        loss()
        model.backward()
        return model.grads

    assert max(check_function(loss, backward_from_reset, model.params)) < 1e-6


def test_check_function_says_what_loss_and_backward_must_return():
    a = np.ones(3)
    with pytest.raises(TypeError, match=r"loss\(\) must return one number, got ndarray of "
                                        r"shape \(3,\)"):
        check_function(lambda: a * 2, lambda: [2 * np.ones(3)], [a])
    with pytest.raises(TypeError, match=r"backward\(\) must return a list of gradients, one "
                                        r"for each array, got NoneType"):
        check_function(lambda: float(a.sum()), lambda: None, [a])


# -- models ------------------------------------------------------------------------------


@pytest.mark.parametrize("loss, what", [
    (None, "None"),
    (np.full(4, 3.0), r"ndarray of shape \(4,\)"),
    (np.array([3.0]), r"ndarray of shape \(1,\)"),
])
def test_a_forward_that_returns_no_single_loss_is_refused_at_the_first_batch(loss, what):
    class Wrong(ScaledRnnlm):
        def forward(self, xs, ts):
            super().forward(xs, ts)
            return loss

    model = Wrong()
    before = [p.copy() for p in model.params]
    with pytest.raises(TypeError, match=rf"Wrong.forward must return the mean loss as one "
                                        rf"number, got {what}"):
        fit_one_epoch(model)
    for p, b in zip(model.params, before, strict=True):
        np.testing.assert_array_equal(p, b)  # nothing trained


def test_a_model_of_ones_own_layer_trains_it():
    model = ScaledRnnlm()
    fit_one_epoch(model)
    assert not np.array_equal(model.layers[2].params[0], np.ones(8, np.float32))


def test_an_array_put_in_a_models_params_is_refused_with_the_copy_to_make():
    # It used to be taken: the layer went on computing with the old array while the
    # optimizer stepped the new one and save_params wrote it (another model in the file).
    model = ScaledRnnlm()
    with pytest.raises(TypeError, match=r"model.params\[0\] = \.\.\.\) would not reach the "
                                        r"layer .* model.params\[0\]\[\.\.\.\] = new"):
        model.params[0] = np.ones((20, 8), np.float32)
    with pytest.raises(TypeError, match=r"model.grads\[1\]\[\.\.\.\] = new"):
        model.grads[1] = np.ones((8, 8), np.float32)
    model.params[0][...] = 1  # the way to change it: in place
    model.params[0] -= 0.5  # (the book's SGD steps so: the same array is put back)
    assert np.all(model.layers[0].params[0] == 0.5)
    snapshot = copy.deepcopy(model.params)  # a copy's arrays are no layer's: a plain list
    snapshot[0] = None


def test_an_array_put_in_a_layers_params_is_named_before_training_or_saving(tmp_path):
    model = ScaledRnnlm()
    before = [p.copy() for p in model.params]
    model.layers[2].params[0] = np.full(8, 2, np.float32)  # the model still lists the old g
    message = (r"ScaledRnnlm.params\[4\] \(scale.g\) is not the array its layer Scale computes "
               r"with .* list their arrays again: model._collect_params\(model.param_names\)")
    with pytest.raises(ValueError, match=message):
        fit_one_epoch(model)
    with pytest.raises(ValueError, match=message):
        model.save_params(tmp_path / "scaled.npz")
    assert not (tmp_path / "scaled.npz").exists()
    for p, b in zip(model.params, before, strict=True):
        np.testing.assert_array_equal(p, b)  # nothing trained


def test_a_backward_that_rebinds_its_grads_is_refused_before_the_first_update():
    # The optimizer reads model.grads, which still holds the layer's first array: the
    # layer's weight used to stay as it was, epoch after epoch, without a word.
    model = ScaledRnnlm()
    model.layers[2] = RebindingScale(np.ones(8, np.float32))
    model._collect_params(model.param_names)
    before = [p.copy() for p in model.params]
    with pytest.raises(ValueError, match=r"RebindingScale.grads\[0\] is no longer "
                                         r"ScaledRnnlm.grads\[4\] \(scale.g\).* "
                                         r"self.grads\[0\]\[\.\.\.\] = \.\.\."):
        fit_one_epoch(model)
    for p, b in zip(model.params, before, strict=True):
        np.testing.assert_array_equal(p, b)


def test_a_layer_whose_grads_do_not_match_its_params_is_named_when_the_model_is_built():
    class ForgotOneGrad(Scale):
        def __init__(self, g):
            super().__init__(g)
            self.params.append(np.zeros(3, np.float32))  # params [g, c], grads [dg]

    class NoGrads:
        params = []

    class Net(ScaledRnnlm):
        def __init__(self, odd):
            super().__init__()
            self.layers[2] = odd
            self._collect_params([f"p{i}" for i in range(6 + len(odd.params))])

    with pytest.raises(ValueError, match=r"layer 2, ForgotOneGrad, has 2 params but 1 grads: "
                                         r"give each parameter its gradient array"):
        Net(ForgotOneGrad(np.ones(8, np.float32)))
    with pytest.raises(TypeError, match=r"layer 2, NoGrads, has no grads list"):
        Net(NoGrads())


def test_a_model_without_a_layers_list_or_a_loss_layer_is_told_what_it_lacks():
    class NoLayers(LanguageModel):
        def __init__(self):
            self.params, self.grads, self.param_names = [], [], []

    with pytest.raises(TypeError, match="NoLayers has no layers list: a model lists its "
                                        "layers"):
        NoLayers().reset_state()

    class Duck:  # a model of one's own, not a LanguageModel, with no loss_layer
        def forward(self, xs, ts):
            return 0.0

    with pytest.raises(TypeError, match="eval_perplexity needs a language model with a "
                                        "loss_layer .* Duck has no loss_layer"):
        eval_perplexity(Duck(), np.arange(40) % 5)


def test_a_peeky_decoder_of_a_layer_without_x_static_says_what_it_needs():
    from layers import TimeGRU
    from models.peeky_seq2seq import PeekyDecoder, PeekySeq2seq
    from tests.replicable_example import GruEncoder, gru_weights

    class GruPeekyDecoder(PeekyDecoder):
        def _lstm(self, init, D, H):
            return TimeGRU(*gru_weights(init, D, H), stateful=True)

    class GruPeeky(PeekySeq2seq):
        encoder_class, decoder_class = GruEncoder, GruPeekyDecoder

    with pytest.raises(TypeError, match=r"GruPeekyDecoder feeds the encoding to its recurrent "
                                        r"layer at every step as x_static, which TimeGRU does "
                                        r"not take"):
        GruPeeky(7, 3, 4, seed=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_load_model_builds_a_registered_class_that_takes_no_seed_or_dtype(tmp_path, monkeypatch,
                                                                         dtype):
    # (A float64 file was rebuilt with dtype=float64, which such a class does not
    # take: "config ... does not fit Tiny".)
    class Tiny(LanguageModel):
        def __init__(self, V, H):
            rng = np.random.default_rng(0)
            self.config = {"V": V, "H": H}
            self.layers = [TimeEmbedding(rng.standard_normal((V, H)).astype(dtype)),
                           TimeAffine(rng.standard_normal((H, V)).astype(dtype),
                                      np.zeros(V, dtype))]
            self.loss_layer = TimeSoftmaxWithLoss()
            self._collect_params(["embed.W", "affine.W", "affine.b"])

    monkeypatch.setitem(models.MODEL_CLASSES, "Tiny", Tiny)
    saved = Tiny(5, 3)
    saved.params[0] += 1  # not what a new Tiny draws
    saved.save_params(tmp_path / "tiny.npz")
    model, _ = models.load_model(tmp_path / "tiny.npz")
    assert isinstance(model, Tiny) and model.config == {"V": 5, "H": 3}
    for p, q in zip(model.params, saved.params, strict=True):
        assert p.dtype == dtype
        np.testing.assert_array_equal(p, q)


OWN_MODULE = """
import numpy as np

from layers import TimeAffine, TimeEmbedding, TimeGRU, TimeSoftmaxWithLoss
from models import LanguageModel


class OwnGruLm(LanguageModel):
    def __init__(self, V, H=6, seed=0):
        rng = np.random.default_rng(seed)
        def randn(*shape):
            return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
        zeros = lambda n: np.zeros(n, np.float32)
        self.config = {"V": V, "H": H}
        self.layers = [TimeEmbedding(randn(V, H)),
                       TimeGRU(randn(H, 3 * H), randn(H, 3 * H), zeros(3 * H), zeros(3 * H),
                               stateful=True),
                       TimeAffine(randn(H, V), zeros(V))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "gru.Wx", "gru.Wh", "gru.bx", "gru.bh", "affine.W",
                              "affine.b"])


class OwnBigramLm(LanguageModel):
    def __init__(self, V, H=6):
        rng = np.random.default_rng(0)
        self.config = {"V": V, "H": H}
        self.layers = [TimeEmbedding(rng.standard_normal((V, H)).astype(np.float32)),
                       TimeAffine(rng.standard_normal((H, V)).astype(np.float32),
                                  np.zeros(V, np.float32))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "affine.W", "affine.b"])
"""


def test_the_scripts_load_a_model_of_ones_own_class_with_import(tmp_path, monkeypatch, capsys):
    # (They could not: MODEL_CLASSES is the process's, and the scripts had no way
    # to register a class, while the message told to register it.)
    from script_loader import load_script

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(models, "MODEL_CLASSES", dict(models.MODEL_CLASSES))
    monkeypatch.delitem(sys.modules, "own_gru_lm", raising=False)
    (tmp_path / "own_gru_lm.py").write_text(OWN_MODULE)
    monkeypatch.syspath_prepend(tmp_path)
    import own_gru_lm

    own_gru_lm.OwnGruLm(5).save_params("own.npz", vocab=list("abcde"), level="char")
    own_gru_lm.OwnBigramLm(5).save_params("bigram.npz", vocab=list("abcde"), level="char")
    monkeypatch.delitem(sys.modules, "own_gru_lm")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])

    generate_text, inspect_model = load_script("generate_text"), load_script("inspect_model")
    assert generate_text.main(["--model", "own.npz", "--start", "a", "--length", "4"]) == 2
    assert ("unknown model class 'OwnGruLm'" in (err := capsys.readouterr().err)
            and "here, name the module that defines it with --import MODULE" in err)
    assert generate_text.main(["--model", "own.npz", "--start", "a", "--length", "4",
                               "--import", "own_gru_lm", "--seed", "0"]) == 0
    assert len(capsys.readouterr().out.strip()) == 5  # the start and four characters
    assert inspect_model.main(["surprisal", "--model", "own.npz", "--text", "abcab",
                               "--import", "own_gru_lm"]) == 0
    assert "# 4 scored tokens" in capsys.readouterr().out
    assert inspect_model.main(["units", "--model", "own.npz", "--text", "abcde" * 6,
                               "--import", "own_gru_lm", "--units", "h0:5"]) == 0
    assert "h0:5" in capsys.readouterr().out
    # A model without a recurrent layer has no units to show: said, not a traceback.
    assert inspect_model.main(["units", "--model", "bigram.npz", "--text", "abcde",
                               "--import", "own_gru_lm"]) == 2
    assert ("bigram.npz holds a OwnBigramLm, which has no recurrent layer: no unit carries a "
            "state to show" in capsys.readouterr().err)
    with pytest.raises(SystemExit):
        inspect_model.main(["surprisal", "--model", "own.npz", "--text", "ab",
                            "--import", "own_gru_lm.py"])
    assert ("--import own_gru_lm.py: give the module's name, as import takes it, not a path: "
            "--import own_gru_lm" in capsys.readouterr().err)


def test_import_keeps_the_folder_for_later_imports_and_says_what_it_replaces(
        tmp_path, monkeypatch, capsys):
    from common.cli import import_model_classes

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(models, "MODEL_CLASSES", dict(models.MODEL_CLASSES))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    for name in ("later_lm", "its_helper", "shadow_lm", "broken_lm"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    # A class that imports a neighbour only when built (it was not found then).
    (tmp_path / "later_lm.py").write_text(
        "from models import Rnnlm\n\n\nclass LaterLm(Rnnlm):\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        import its_helper  # noqa: F401\n"
        "        super().__init__(*args, **kwargs)\n")
    (tmp_path / "its_helper.py").write_text("")
    assert import_model_classes(["later_lm"]) is None
    models.model_from_config("LaterLm", {"vocab_size": 5, "wordvec_size": 3,
                                         "hidden_size": 3})
    # One of rnnlab's names: the module's class, said (it was silently rnnlab's).
    (tmp_path / "shadow_lm.py").write_text(
        "import models\n\n\nclass Rnnlm(models.Rnnlm):\n    pass\n")
    assert import_model_classes(["shadow_lm"]) is None
    assert models.MODEL_CLASSES["Rnnlm"] is sys.modules["shadow_lm"].Rnnlm
    assert ("notice: --import shadow_lm: its class Rnnlm replaces the models.rnnlm.Rnnlm of "
            "that name for this run" in capsys.readouterr().err)
    # A module whose own import fails is not said to be missing.
    (tmp_path / "broken_lm.py").write_text("import broke\n")
    assert import_model_classes(["broken_lm"]) == (
        "--import broken_lm: importing it failed: No module named 'broke'")
    # A path is not imported (./later_lm.py used to fail on a "relative import").
    for path in ("./later_lm.py", "later_lm.py", str(tmp_path / "later_lm.py")):
        assert import_model_classes([path]) == (
            f"--import {path}: give the module's name, as import takes it, not a path: "
            f"--import later_lm")
    assert import_model_classes(["lib/other_lm.py"]) == (
        "--import lib/other_lm.py: give the module's name, as import takes it, not a path: "
        "--import other_lm, with lib on PYTHONPATH (or run from that folder)")
    # In packages: the dotted name, so that the module's relative imports still work.
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    for init in ("pkg/__init__.py", "pkg/sub/__init__.py"):
        (tmp_path / init).write_text("")
    for path, module in (("pkg/sub/lm.py", "pkg.sub.lm"), ("pkg/", "pkg"),
                         ("pkg/__init__.py", "pkg")):
        assert import_model_classes([path]).endswith(f"not a path: --import {module}"), path


# -- optimizers and arrays over one memory -------------------------------------------------


def tied_by_a_view():
    """The book's tying: the output layer reads the embedding's W through W.T."""
    W = (np.random.default_rng(0).standard_normal((30, 8)) / 100).astype(np.float32)
    embed, affine = TimeEmbedding(W), TimeAffine(W.T, np.zeros(30, np.float32))
    xs = np.random.default_rng(1).integers(0, 30, (2, 4))
    loss_layer = TimeSoftmaxWithLoss()
    loss_layer.forward(affine.forward(embed.forward(xs)), xs)
    embed.backward(affine.backward(loss_layer.backward()))
    return [*embed.params, *affine.params], [*embed.grads, *affine.grads]


@pytest.mark.parametrize("optimizer", [Adam(0.01), Momentum(0.1)])
def test_a_stateful_optimizer_refuses_two_arrays_over_one_memory(optimizer):
    params, grads = tied_by_a_view()
    before = params[0].copy()
    with pytest.raises(ValueError, match=r"params\[0\] and params\[1\] are two arrays over "
                                         r"the same memory .*transpose=True"):
        optimizer.update(params, grads)
    np.testing.assert_array_equal(params[0], before)


def test_sgd_steps_two_arrays_over_one_memory_by_both_gradients():
    params, grads = tied_by_a_view()
    expected = params[0] - 0.1 * (grads[0] + grads[1].T)
    SGD(0.1).update(params, grads)
    np.testing.assert_allclose(params[0], expected, rtol=1e-6, atol=1e-7)
