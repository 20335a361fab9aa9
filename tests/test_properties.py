"""Property-based tests of the time layers: for random shapes (N, T, D, H in
1..4) and random inputs, the analytic gradients match central differences
and the forward passes keep their invariants."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.gradcheck import check_function, check_layer
from layers import (
    TimeAffine,
    TimeEmbedding,
    TimeGRU,
    TimeLSTM,
    TimeRNN,
    TimeSoftmaxWithLoss,
    joint_weight_bias,
)

TOL = 1e-6
SETTINGS = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

dim = st.integers(1, 4)
seed = st.integers(0, 2**32 - 1)
RECURRENT = ["rnn", "lstm", "gru"]


def make_recurrent(kind, D, H, rng, dtype=np.float64, stateful=False, scale=0.5):
    """A TimeRNN / TimeLSTM / TimeGRU with weights uniform in +-scale."""
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[kind]

    def u(*shape):
        return rng.uniform(-scale, scale, size=shape).astype(dtype)

    if kind == "rnn":
        return TimeRNN(u(D, H), u(H, H), u(H), stateful=stateful)
    if kind == "lstm":
        return TimeLSTM(u(D, gates * H), u(H, gates * H), u(gates * H), stateful=stateful)
    return TimeGRU(u(D, gates * H), u(H, gates * H), u(gates * H), u(gates * H),
                   stateful=stateful)


def initial_state(kind, N, H, rng):
    """(h0,) or (h0, c0), inside (-1, 1)."""
    return tuple(rng.uniform(-0.9, 0.9, size=(N, H)) for _ in range(2 if kind == "lstm" else 1))


def state_grads(layer, kind):
    return [layer.dh, layer.dc] if kind == "lstm" else [layer.dh]


# -- gradient checks ----------------------------------------------------------------------


@SETTINGS
@given(kind=st.sampled_from(RECURRENT), N=dim, T=dim, D=dim, H=dim, seed=seed,
       stateful=st.booleans())
def test_recurrent_gradients_including_the_initial_state(kind, N, T, D, H, seed, stateful):
    rng = np.random.default_rng(seed)
    layer = make_recurrent(kind, D, H, rng, stateful=stateful)
    xs = rng.standard_normal((N, T, D))
    state = initial_state(kind, N, H, rng)
    w = rng.standard_normal((N, T, H))

    def loss():
        layer.set_state(*state)
        return float(np.sum(w * layer.forward(xs)))

    def backward():
        loss()
        dxs = layer.backward(w)
        return [*layer.grads, dxs, *state_grads(layer, kind)]

    errors = check_function(loss, backward, [*layer.params, xs, *state])
    assert max(errors) < TOL, errors


@SETTINGS
@given(N=dim, T=dim, D=dim, M=dim, seed=seed, transpose=st.booleans(), joint=st.booleans())
def test_time_affine_gradients(N, T, D, M, seed, transpose, joint):
    rng = np.random.default_rng(seed)
    W, b = rng.standard_normal((D, M)), rng.standard_normal(M)
    if joint:
        W, b = joint_weight_bias(W, b)
    if transpose:
        W = np.ascontiguousarray(W.T)
    layer = TimeAffine(W, b, transpose=transpose)
    errors = check_layer(layer, [rng.standard_normal((N, T, D))], seed=seed % 1000)
    assert max(errors.values()) < TOL, errors


@SETTINGS
@given(N=dim, T=dim, V=dim, D=dim, seed=seed)
def test_time_embedding_gradient_with_repeated_ids(N, T, V, D, seed):
    rng = np.random.default_rng(seed)
    layer = TimeEmbedding(rng.standard_normal((V, D)))
    ids = rng.integers(0, V, size=(N, T))
    errors = check_layer(layer, [ids], seed=seed % 1000)
    assert max(errors.values()) < TOL, errors


@SETTINGS
@given(N=dim, T=dim, V=st.integers(2, 5), seed=seed, scale=st.sampled_from([0.1, 1.0]))
def test_softmax_with_loss_gradient_with_ignored_targets(N, T, V, seed, scale):
    rng = np.random.default_rng(seed)
    layer = TimeSoftmaxWithLoss()
    # Logits within +-2: with a far larger margin the loss is log_z - x_t of
    # two nearly equal numbers, and a central difference of it measures its
    # round-off rather than the (tiny) gradient. eps=1e-5 for the same reason.
    xs = rng.uniform(-2, 2, size=(N, T, V)) * scale
    ts = rng.integers(-1, V, size=(N, T))  # -1 is the ignore label
    errors = check_layer(layer, [xs, ts], seed=seed % 1000, eps=1e-5)
    assert max(errors.values()) < TOL, errors


# -- forward invariants -------------------------------------------------------------------


@SETTINGS
@given(kind=st.sampled_from(RECURRENT), N=dim, T=dim, D=dim, H=dim, seed=seed,
       dtype=st.sampled_from([np.float32, np.float64]))
def test_recurrent_shapes_dtypes_and_bounded_outputs(kind, N, T, D, H, seed, dtype):
    rng = np.random.default_rng(seed)
    layer = make_recurrent(kind, D, H, rng, dtype=dtype, scale=1.0)
    xs = rng.uniform(-1, 1, size=(N, T, D)).astype(dtype)
    hs = layer.forward(xs)
    assert hs.shape == (N, T, H) and hs.dtype == dtype
    # tanh of a bounded pre-activation (RNN), o * tanh(c) (LSTM), a convex
    # mix of tanh and the previous state (GRU): always strictly inside (-1, 1).
    assert np.all(np.abs(hs) < 1)
    dxs = layer.backward(rng.standard_normal((N, T, H)).astype(dtype))
    assert dxs.shape == xs.shape and dxs.dtype == dtype
    for p, g in zip(layer.params, layer.grads, strict=True):
        assert g.shape == p.shape and g.dtype == dtype
        assert np.all(np.isfinite(g))


@SETTINGS
@given(kind=st.sampled_from(RECURRENT), N=dim, T=st.integers(2, 6), D=dim, H=dim, seed=seed,
       data=st.data())
def test_a_stateful_layer_run_in_two_halves_equals_one_run(kind, N, T, D, H, seed, data):
    split = data.draw(st.integers(1, T - 1), label="split")
    rng = np.random.default_rng(seed)
    whole = make_recurrent(kind, D, H, rng, stateful=True)
    halves = make_recurrent(kind, D, H, np.random.default_rng(0), stateful=True)
    for p, q in zip(halves.params, whole.params, strict=True):
        p[...] = q
    xs = rng.standard_normal((N, T, D))
    state = initial_state(kind, N, H, rng)
    whole.set_state(*state)
    halves.set_state(*state)

    hs = whole.forward(xs)
    first, second = halves.forward(xs[:, :split]), halves.forward(xs[:, split:])
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), hs, rtol=0,
                               atol=1e-13)
    np.testing.assert_allclose(halves.h, whole.h, rtol=0, atol=1e-13)
    # The carried state is the last output (exactly); the split may change
    # the last bit of a product, hence the tolerance above.
    np.testing.assert_array_equal(whole.h, hs[:, -1])
    np.testing.assert_array_equal(halves.h, second[:, -1])
    if kind == "lstm":
        np.testing.assert_allclose(halves.c, whole.c, rtol=0, atol=1e-13)


@SETTINGS
@given(kind=st.sampled_from(RECURRENT), N=dim, T=dim, D=dim, H=dim, seed=seed)
def test_stateless_layers_forget_and_reset_state_restarts(kind, N, T, D, H, seed):
    rng = np.random.default_rng(seed)
    layer = make_recurrent(kind, D, H, rng, stateful=False)
    xs = rng.standard_normal((N, T, D))
    first = layer.forward(xs).copy()
    np.testing.assert_array_equal(layer.forward(xs), first)
    stateful = make_recurrent(kind, D, H, np.random.default_rng(seed), stateful=True)
    np.testing.assert_array_equal(stateful.forward(xs), first)
    stateful.reset_state()
    np.testing.assert_array_equal(stateful.forward(xs), first)


def reference_loss(xs, ts, ignore=-1):
    """-mean log softmax(x)[t] over the positions that are not ignored."""
    V = xs.shape[-1]
    x, t = xs.reshape(-1, V), ts.reshape(-1)
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    valid = t != ignore
    if not valid.any():
        return 0.0
    return float(-log_p[valid, t[valid]].mean())


@SETTINGS
@given(N=dim, T=dim, V=st.integers(1, 6), seed=seed,
       scale=st.sampled_from([1e-3, 1.0, 30.0, 1e3]), shift=st.floats(-1e3, 1e3))
def test_softmax_loss_invariants(N, T, V, seed, scale, shift):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((N, T, V)) * scale
    ts = rng.integers(-1, V, size=(N, T))
    layer = TimeSoftmaxWithLoss()

    loss = layer.forward(xs, ts)
    dxs = layer.backward().copy()
    # Cross-entropy is >= 0; computed as log_z - x_t it may miss by round-off
    # (V = 1: log(exp(x)) - x).
    assert loss >= -8 * np.finfo(np.float64).eps * max(1.0, float(np.abs(xs).max()))
    assert loss == pytest.approx(reference_loss(xs, ts), rel=1e-9, abs=1e-12)
    assert dxs.shape == xs.shape and dxs.dtype == xs.dtype
    # Each row of the gradient is softmax - onehot (scaled): it sums to zero;
    # ignored positions get none.
    np.testing.assert_allclose(dxs.sum(axis=-1), 0, atol=1e-12)
    assert np.all(dxs[ts == -1] == 0)
    assert np.all(np.abs(dxs) <= 1)

    # Adding a constant (its own per row) to every logit of a row changes nothing.
    shifts = shift * rng.uniform(-1, 1, size=(N, T, 1))
    shifted_loss = layer.forward(xs + shifts, ts)
    shifted_dxs = layer.backward().copy()
    assert shifted_loss == pytest.approx(loss, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(shifted_dxs, dxs, rtol=1e-6, atol=1e-9)


@SETTINGS
@given(N=dim, T=dim, V=st.integers(2, 6), seed=seed)
def test_softmax_loss_of_ignored_positions_counts_for_nothing(N, T, V, seed):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((N, T, V))
    ts = rng.integers(0, V, size=(N, T))
    ignored = ts.copy()
    ignored[rng.random((N, T)) < 0.5] = -1
    layer = TimeSoftmaxWithLoss()
    valid = ignored != -1
    expected = (reference_loss(xs[valid][None], ts[valid][None]) if valid.any() else 0.0)
    assert layer.forward(xs, ignored) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@SETTINGS
@given(N=dim, T=dim, V=dim, D=dim, seed=seed, dtype=st.sampled_from([np.float32, np.float64]))
def test_embedding_selects_rows_and_accumulates_repeats(N, T, V, D, seed, dtype):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((V, D)).astype(dtype)
    layer = TimeEmbedding(W)
    ids = rng.integers(0, V, size=(N, T))
    out = layer.forward(ids)
    assert out.shape == (N, T, D) and out.dtype == dtype
    np.testing.assert_array_equal(out, W[ids])
    dout = rng.standard_normal((N, T, D)).astype(dtype)
    assert layer.backward(dout) is None
    expected = np.zeros_like(W)
    np.add.at(expected, ids.reshape(-1), dout.reshape(-1, D))
    np.testing.assert_allclose(layer.grads[0], expected, rtol=1e-6)


@SETTINGS
@given(N=dim, T=dim, D=dim, M=dim, seed=seed, transpose=st.booleans())
def test_time_affine_equals_a_product_at_every_step(N, T, D, M, seed, transpose):
    rng = np.random.default_rng(seed)
    W, b = rng.standard_normal((D, M)), rng.standard_normal(M)
    layer = TimeAffine(np.ascontiguousarray(W.T) if transpose else W, b, transpose=transpose)
    x = rng.standard_normal((N, T, D))
    y = layer.forward(x)
    assert y.shape == (N, T, M) and y.dtype == np.float64
    np.testing.assert_allclose(y, np.einsum("ntd,dm->ntm", x, W) + b, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal((N, T, M))
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, np.einsum("ntm,dm->ntd", dy, W), rtol=1e-12, atol=1e-12)
    # The bias gradient sums over every position.
    np.testing.assert_allclose(layer.grads[1], dy.sum(axis=(0, 1)), rtol=1e-12, atol=1e-12)
