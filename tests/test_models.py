"""End-to-end gradient checks of every language model, and their contracts.

The model's loss is a function of all its parameters; central differences
of that loss must match ``backward`` for every one of them (float64).
"""

import numpy as np
import pytest

from common.gradcheck import check_function
from common.optimizer import SGD
from layers import TimeDropout
from models import BetterRnnlm, GruRnnlm, Rnnlm, SimpleRnnlm, build_model

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
        # A tied array's gradient is the sum of its gradients at each use.
        total = {}
        for p, g in zip(model.params, model.grads, strict=True):
            total[id(p)] = total.get(id(p), 0) + g
        return [total[id(p)] for p in model.named_params().values()]

    errors = check_function(loss, backward, list(model.named_params().values()))
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
