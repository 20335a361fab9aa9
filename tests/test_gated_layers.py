"""LSTM, GRU and dropout: exact gradients, state handling and input errors.

Gradient checks run in float64 against central differences and require a
maximum relative error (relative to the gradient's scale) below 1e-6.
"""

import numpy as np
import pytest

import layers.gru
import layers.lstm
from common.gradcheck import check_function, check_layer
from layers.dropout import TimeDropout
from layers.gru import GRU, TimeGRU
from layers.lstm import LSTM, TimeLSTM
from layers.rnn import TimeRNN

TOL = 1e-6
N, T, D, H = 3, 4, 5, 6


def randn(rng, *shape):
    return rng.standard_normal(shape)


def assert_exact(errors):
    worst = max(errors.values()) if isinstance(errors, dict) else max(errors)
    assert worst < TOL, errors


def lstm_weights(rng, dtype=np.float64):
    ws = randn(rng, D, 4 * H) * 0.5, randn(rng, H, 4 * H) * 0.5, randn(rng, 4 * H) * 0.5
    return [w.astype(dtype) for w in ws]


def gru_weights(rng, dtype=np.float64):
    ws = (
        randn(rng, D, 3 * H) * 0.5,
        randn(rng, H, 3 * H) * 0.5,
        randn(rng, 3 * H) * 0.5,
        randn(rng, 3 * H) * 0.5,
    )
    return [w.astype(dtype) for w in ws]


def time_state_check(layer, xs, state, rng):
    """Check every weight, the inputs and the initial state(s) of a Time layer.

    ``state`` is ``[h0]`` or ``[h0, c0]``; the gradients w.r.t. it are read
    from ``layer.dh`` (and ``layer.dc``).
    """
    w = randn(rng, xs.shape[0], xs.shape[1], layer.params[1].shape[0])

    def loss():
        layer.set_state(*state)
        return float(np.sum(w * layer.forward(xs)))

    def backward():
        loss()
        dxs = layer.backward(w)
        dstate = [layer.dh] if len(state) == 1 else [layer.dh, layer.dc]
        return [*layer.grads, dxs, *dstate]

    return check_function(loss, backward, [*layer.params, xs, *state])


def zero_state_check(layer, xs, rng):
    w = randn(rng, xs.shape[0], xs.shape[1], layer.params[1].shape[0])

    def loss():
        layer.reset_state()
        return float(np.sum(w * layer.forward(xs)))

    def backward():
        loss()
        return [*layer.grads, layer.backward(w)]

    return check_function(loss, backward, [*layer.params, xs])


# --- LSTM -------------------------------------------------------------------


def test_lstm_cell_gradients(rng):
    layer = LSTM(*lstm_weights(rng))
    x, h_prev, c_prev = randn(rng, N, D), randn(rng, N, H), randn(rng, N, H)
    wh, wc = randn(rng, N, H), randn(rng, N, H)

    def loss():
        h_next, c_next = layer.forward(x, h_prev, c_prev)
        return float(np.sum(wh * h_next) + np.sum(wc * c_next))

    def backward():
        loss()
        dx, dh_prev, dc_prev = layer.backward(wh, wc)
        return [*layer.grads, dx, dh_prev, dc_prev]

    assert_exact(check_function(loss, backward, [*layer.params, x, h_prev, c_prev]))


@pytest.mark.parametrize("stateful", [False, True])
def test_time_lstm_with_initial_state(rng, stateful):
    layer = TimeLSTM(*lstm_weights(rng), stateful=stateful)
    state = [randn(rng, N, H), randn(rng, N, H)]
    assert_exact(time_state_check(layer, randn(rng, N, T, D), state, rng))


@pytest.mark.parametrize("stateful", [False, True])
def test_time_lstm_from_zero_state(rng, stateful):
    layer = TimeLSTM(*lstm_weights(rng), stateful=stateful)
    assert_exact(zero_state_check(layer, randn(rng, N, T, D), rng))


@pytest.mark.parametrize("steps", [1, T])
def test_time_lstm_from_zeros_equals_an_explicit_zero_state(rng, steps):
    """From no state the first step's ``h @ Wh`` (zero) is skipped and its rows
    left out of dWh: the same results as from zeros set with set_state, where
    nothing is skipped."""
    Wx, Wh, b = lstm_weights(rng)
    xs, dhs = randn(rng, N, steps, D), randn(rng, N, steps, H)
    skipping, explicit = TimeLSTM(Wx, Wh, b), TimeLSTM(Wx, Wh, b)
    explicit.set_state(np.zeros((N, H)), np.zeros((N, H)))
    np.testing.assert_array_equal(skipping.forward(xs), explicit.forward(xs))
    np.testing.assert_allclose(skipping.backward(dhs), explicit.backward(dhs), rtol=1e-12,
                               atol=1e-15)
    for got, expected in zip(skipping.grads + [skipping.dh, skipping.dc],
                             explicit.grads + [explicit.dh, explicit.dc], strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert np.abs(skipping.grads[1]).max() > 0 or steps == 1
    assert steps > 1 or not skipping.grads[1].any()  # one step from zeros: no dWh


def test_one_step_from_zeros_after_a_longer_sequence_has_no_dWh(rng):
    """The skipped rows leave dWh zero, not what the last backward left there
    (the grads are arrays the layer writes over at every backward)."""
    layer = TimeLSTM(*lstm_weights(rng))
    layer.forward(randn(rng, N, T, D))
    layer.backward(randn(rng, N, T, H))
    assert layer.grads[1].any()
    layer.forward(randn(rng, N, 1, D))
    layer.backward(randn(rng, N, 1, H))
    assert not layer.grads[1].any()


def static_lstm(rng, S):
    """A TimeLSTM whose Wx has S rows for a static input, then D for xs."""
    Wx, Wh, b = randn(rng, S + D, 4 * H) * 0.5, randn(rng, H, 4 * H) * 0.5, randn(rng, 4 * H) * 0.5
    return TimeLSTM(Wx, Wh, b)


@pytest.mark.parametrize("with_state", [False, True])
def test_time_lstm_static_input_is_the_input_repeated_and_joined(rng, with_state):
    """``forward(xs, x_static)`` is ``forward([x_static at every step | xs])``;
    ``dx_static`` is the sum over the steps of that input's gradient."""
    S = 3
    joined_layer, static_layer = static_lstm(rng, S), None
    static_layer = TimeLSTM(*joined_layer.params)
    xs, x_static, dhs = randn(rng, N, T, D), randn(rng, N, S), randn(rng, N, T, H)
    if with_state:
        state = randn(rng, N, H), randn(rng, N, H)
        joined_layer.set_state(*state)
        static_layer.set_state(*state)
    joined = np.concatenate([np.repeat(x_static[:, None], T, axis=1), xs], axis=2)
    np.testing.assert_allclose(static_layer.forward(xs, x_static=x_static),
                               joined_layer.forward(joined), rtol=1e-12, atol=1e-14)
    djoined = joined_layer.backward(dhs)
    np.testing.assert_allclose(static_layer.backward(dhs), djoined[:, :, S:], rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_allclose(static_layer.dx_static, djoined[:, :, :S].sum(axis=1),
                               rtol=1e-12, atol=1e-14)
    for got, expected in zip(static_layer.grads + [static_layer.dh, static_layer.dc],
                             joined_layer.grads + [joined_layer.dh, joined_layer.dc],
                             strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_time_lstm_static_input_gradients(rng):
    S = 2
    layer = static_lstm(rng, S)
    xs, x_static = randn(rng, N, T, D), randn(rng, N, S)
    h0, c0 = randn(rng, N, H), randn(rng, N, H)
    w = randn(rng, N, T, H)

    def loss():
        layer.set_state(h0, c0)
        return float(np.sum(w * layer.forward(xs, x_static=x_static)))

    def backward():
        loss()
        dxs = layer.backward(w)
        return [*layer.grads, dxs, layer.dx_static, layer.dh, layer.dc]

    assert_exact(check_function(loss, backward, [*layer.params, xs, x_static, h0, c0]))


def test_time_lstm_static_input_errors(rng):
    layer = static_lstm(rng, 2)
    xs = randn(rng, N, T, D)
    with pytest.raises(ValueError, match=r"x_static.*\(N, S\)"):
        layer.forward(xs, x_static=randn(rng, 2))
    with pytest.raises(ValueError, match="x_static has 2 rows but xs has 3"):
        layer.forward(xs, x_static=randn(rng, 2, 2))
    with pytest.raises(TypeError, match="float32"):
        layer.forward(xs, x_static=randn(rng, N, 2).astype(np.float32))
    with pytest.raises(ValueError, match="5 features and x_static 3 but Wx expects D = 7"):
        layer.forward(xs, x_static=randn(rng, N, 3))
    with pytest.raises(ValueError, match="5 features but Wx expects D = 7"):
        layer.forward(xs)


def test_time_lstm_matches_its_cell(rng):
    Wx, Wh, b = lstm_weights(rng)
    time_layer, cell = TimeLSTM(Wx, Wh, b), LSTM(Wx, Wh, b)
    xs, h, c = randn(rng, N, T, D), randn(rng, N, H), randn(rng, N, H)
    time_layer.set_state(h, c)
    hs = time_layer.forward(xs)
    for t in range(T):
        h, c = cell.forward(xs[:, t], h, c)
        np.testing.assert_allclose(hs[:, t], h, rtol=1e-12, atol=1e-14)


def test_stateful_lstm_carries_h_and_c(rng):
    Wx, Wh, b = lstm_weights(rng)
    xs = randn(rng, N, 2 * T, D)
    whole = TimeLSTM(Wx, Wh, b).forward(xs)

    layer = TimeLSTM(Wx, Wh, b, stateful=True)
    hs1 = layer.forward(xs[:, :T])
    np.testing.assert_array_equal(layer.h, hs1[:, -1])
    hs2 = layer.forward(xs[:, T:])
    # Two stateful halves compute exactly what one pass over the whole does.
    np.testing.assert_allclose(np.concatenate([hs1, hs2], axis=1), whole, rtol=1e-12)
    # The carried state is a constant for the next backward: gradients are exact.
    assert_exact(time_state_check(layer, xs[:, :T].copy(), [layer.h.copy(), layer.c.copy()], rng))


def test_a_non_stateful_lstm_uses_a_set_state_for_the_next_forward_only(rng):
    """Issue 12, finding 11: the state set on a non-stateful layer stuck for
    every later forward, unlike the docstring."""
    layer = TimeLSTM(*lstm_weights(rng))
    xs = randn(rng, N, T, D)
    hs1 = layer.forward(xs)
    assert layer.h is None and layer.c is None
    np.testing.assert_array_equal(layer.forward(xs), hs1)
    h0, c0 = randn(rng, N, H), randn(rng, N, H)
    layer.set_state(h0, c0)
    from_state = layer.forward(xs)
    assert not np.allclose(from_state, hs1)
    assert layer.h is None and layer.c is None
    np.testing.assert_array_equal(layer.forward(xs), hs1)  # back to zeros
    # The same first forward as a stateful layer given the same state.
    stateful = TimeLSTM(*layer.params, stateful=True)
    stateful.set_state(h0, c0)
    np.testing.assert_array_equal(stateful.forward(xs), from_state)


def test_time_lstm_overwrites_grads_in_place(rng):
    layer = TimeLSTM(*lstm_weights(rng))
    grads = list(layer.grads)
    layer.forward(randn(rng, N, T, D))
    layer.backward(randn(rng, N, T, H))
    assert all(g is g0 for g, g0 in zip(layer.grads, grads, strict=True))
    assert np.abs(layer.grads[1]).max() > 0


def test_time_lstm_backward_runs_once_per_forward(rng):
    # Backward writes its step gradients over the gates forward saved: a second
    # backward would read them as gates, so it is refused; a new forward is fine.
    layer = TimeLSTM(*lstm_weights(rng))
    xs, dhs = randn(rng, N, T, D), randn(rng, N, T, H)
    layer.forward(xs)
    dxs = layer.backward(dhs)
    with pytest.raises(RuntimeError, match=r"TimeLSTM.backward\(\) called before forward\(\), "
                                           r"or twice after one"):
        layer.backward(dhs)
    layer.forward(xs)
    np.testing.assert_array_equal(layer.backward(dhs), dxs)


def test_time_lstm_float32_stays_float32(rng):
    layer = TimeLSTM(*lstm_weights(rng, np.float32), stateful=True)
    hs = layer.forward(randn(rng, N, T, D).astype(np.float32))
    dxs = layer.backward(randn(rng, N, T, H).astype(np.float32))
    assert hs.dtype == dxs.dtype == layer.h.dtype == layer.c.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads)


def test_lstm_errors(rng):
    Wx, Wh, b = lstm_weights(rng)
    with pytest.raises(ValueError, match="4H"):
        TimeLSTM(Wx, Wh[:, :-1], b)
    with pytest.raises(ValueError, match="4H"):
        LSTM(Wx[:, :-1], Wh, b)
    layer = TimeLSTM(Wx, Wh, b, stateful=True)
    with pytest.raises(ValueError, match=r"\(N, T, D\)"):
        layer.forward(randn(rng, N, D))
    with pytest.raises(ValueError, match="features"):
        layer.forward(randn(rng, N, T, D + 1))
    with pytest.raises(TypeError, match="float32"):
        layer.forward(randn(rng, N, T, D).astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        layer.set_state(randn(rng, N, H + 1))
    with pytest.raises(ValueError, match="shape"):
        layer.set_state(randn(rng, N, H), randn(rng, N + 1, H))
    with pytest.raises(TypeError, match="dtype"):
        layer.set_state(randn(rng, N, H), randn(rng, N, H).astype(np.float32))
    layer.forward(randn(rng, N, T, D))
    with pytest.raises(ValueError, match="dhs"):
        layer.backward(randn(rng, N, T + 1, H))
    with pytest.raises(ValueError, match="reset_state"):
        layer.forward(randn(rng, N + 1, T, D))  # the carried state has batch N
    cell = LSTM(Wx, Wh, b)
    with pytest.raises(ValueError, match="c_prev"):
        cell.forward(randn(rng, N, D), randn(rng, N, H), randn(rng, N, H - 1))


# --- both: backward by blocks of steps ---------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("steps_per_block", [1, 3])
def test_time_layer_backward_by_blocks_of_steps(rng, monkeypatch, kind, steps_per_block):
    """Backward computes its local derivatives a block of steps at a time,
    the last block first (``common.parallel.steps_at_once`` picks the size):
    blocks of 1 or 3 of 4 steps (one short) give the bits of all steps at
    once, and exact gradients."""
    module, cls, weights = {"lstm": (layers.lstm, TimeLSTM, lstm_weights),
                            "gru": (layers.gru, TimeGRU, gru_weights)}[kind]
    xs = randn(rng, N, T, D).astype(np.float32)
    dhs = randn(rng, N, T, H).astype(np.float32)
    w32 = weights(rng, np.float32)
    results = []
    for k in (T, steps_per_block):
        monkeypatch.setattr(module, "steps_at_once", lambda n_steps, step_elements, k=k: k)
        layer = cls(*(w.copy() for w in w32))
        layer.forward(xs)
        results.append([layer.backward(dhs), layer.dh, *layer.grads])
    for whole, blocks in zip(*results, strict=True):
        np.testing.assert_array_equal(blocks, whole)

    layer = cls(*weights(rng))
    state = [randn(rng, N, H)] + ([randn(rng, N, H)] if kind == "lstm" else [])
    assert_exact(time_state_check(layer, randn(rng, N, T, D), state, rng))


# --- GRU --------------------------------------------------------------------


def test_gru_cell_gradients(rng):
    layer = GRU(*gru_weights(rng))
    assert_exact(check_layer(layer, [randn(rng, N, D), randn(rng, N, H)]))


@pytest.mark.parametrize("stateful", [False, True])
def test_time_gru_with_initial_state(rng, stateful):
    layer = TimeGRU(*gru_weights(rng), stateful=stateful)
    assert_exact(time_state_check(layer, randn(rng, N, T, D), [randn(rng, N, H)], rng))


@pytest.mark.parametrize("stateful", [False, True])
def test_time_gru_from_zero_state(rng, stateful):
    layer = TimeGRU(*gru_weights(rng), stateful=stateful)
    assert_exact(zero_state_check(layer, randn(rng, N, T, D), rng))


def test_time_gru_matches_its_cell(rng):
    weights = gru_weights(rng)
    time_layer, cell = TimeGRU(*weights), GRU(*weights)
    xs, h = randn(rng, N, T, D), randn(rng, N, H)
    time_layer.set_state(h)
    hs = time_layer.forward(xs)
    for t in range(T):
        h = cell.forward(xs[:, t], h)
        np.testing.assert_allclose(hs[:, t], h, rtol=1e-12, atol=1e-14)


def test_stateful_gru_carries_state(rng):
    weights = gru_weights(rng)
    xs = randn(rng, N, 2 * T, D)
    whole = TimeGRU(*weights).forward(xs)
    layer = TimeGRU(*weights, stateful=True)
    hs1 = layer.forward(xs[:, :T])
    np.testing.assert_array_equal(layer.h, hs1[:, -1])
    hs2 = layer.forward(xs[:, T:])
    np.testing.assert_allclose(np.concatenate([hs1, hs2], axis=1), whole, rtol=1e-12)
    assert_exact(time_state_check(layer, xs[:, :T].copy(), [layer.h.copy()], rng))


def test_time_gru_float32_and_grads_in_place(rng):
    layer = TimeGRU(*gru_weights(rng, np.float32))
    grads = list(layer.grads)
    hs = layer.forward(randn(rng, N, T, D).astype(np.float32))
    dxs = layer.backward(randn(rng, N, T, H).astype(np.float32))
    assert hs.dtype == dxs.dtype == np.float32
    assert all(g is g0 and g.dtype == np.float32 for g, g0 in zip(layer.grads, grads, strict=True))


def test_gru_errors(rng):
    Wx, Wh, bx, bh = gru_weights(rng)
    with pytest.raises(ValueError, match="3H"):
        TimeGRU(Wx, Wh, bx, bh[:-1])
    with pytest.raises(ValueError, match="3H"):
        GRU(Wx[:, :-1], Wh, bx, bh)
    layer = TimeGRU(Wx, Wh, bx, bh)
    with pytest.raises(ValueError, match=r"\(N, T, D\)"):
        layer.forward(randn(rng, N, T, D, 1))
    with pytest.raises(ValueError, match="features"):
        layer.forward(randn(rng, N, T, D - 1))
    with pytest.raises(TypeError, match="float32"):
        layer.forward(randn(rng, N, T, D).astype(np.float32))
    with pytest.raises(ValueError, match="units"):
        layer.set_state(randn(rng, N, H + 1))
    layer.set_state(randn(rng, N, H))
    with pytest.raises(ValueError, match="reset_state"):
        layer.forward(randn(rng, N + 1, T, D))
    with pytest.raises(ValueError, match="h_prev"):
        GRU(Wx, Wh, bx, bh).forward(randn(rng, N, D), randn(rng, N, H + 1))


# --- Dropout ----------------------------------------------------------------


def test_dropout_gradient_with_fixed_mask(rng):
    layer = TimeDropout(0.4)
    xs = randn(rng, N, T, D)
    keep = rng.random(xs.shape) >= 0.4
    layer.set_mask(keep)
    assert_exact(check_layer(layer, [xs]))
    np.testing.assert_allclose(layer.forward(xs), np.where(keep, xs / 0.6, 0.0), rtol=1e-15)


def test_dropout_eval_is_identity(rng):
    layer = TimeDropout(0.5, rng=0)
    layer.train_flg = False
    xs, dys = randn(rng, N, T, D), randn(rng, N, T, D)
    np.testing.assert_array_equal(layer.forward(xs), xs)
    np.testing.assert_array_equal(layer.backward(dys), dys)


def test_dropout_random_masks(rng):
    xs = np.ones((200, 50), dtype=np.float32)
    ys = TimeDropout(0.3, rng=7).forward(xs)
    assert ys.dtype == np.float32
    assert set(np.unique(ys).tolist()) == {0.0, np.float32(1 / 0.7)}
    assert abs((ys > 0).mean() - 0.7) < 0.02
    # The same seed gives the same mask; the layer's backward uses it.
    layer = TimeDropout(0.3, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(layer.forward(xs), ys)
    np.testing.assert_array_equal(layer.backward(xs), ys)
    assert layer.params == [] and layer.grads == []


def test_dropout_errors(rng):
    with pytest.raises(ValueError, match="dropout_ratio"):
        TimeDropout(1.0)
    layer = TimeDropout(0.5)
    with pytest.raises(TypeError, match="float"):
        layer.forward(np.arange(6).reshape(2, 3))
    layer.set_mask(np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="mask"):
        layer.forward(randn(rng, 3, 2))


@pytest.mark.parametrize("kind", ["rnn", "gru"])
def test_a_non_stateful_rnn_or_gru_uses_a_set_state_for_the_next_forward_only(rng, kind):
    """Issue 12, finding 11, for the one-state layers."""
    if kind == "gru":
        layer = TimeGRU(*gru_weights(rng))
    else:
        layer = TimeRNN(randn(rng, D, H), randn(rng, H, H) * 0.5, randn(rng, H))
    xs = randn(rng, N, T, D)
    from_zeros = layer.forward(xs)
    layer.set_state(randn(rng, N, H))
    from_state = layer.forward(xs)
    assert not np.allclose(from_state, from_zeros)
    assert layer.h is None
    np.testing.assert_array_equal(layer.forward(xs), from_zeros)
