"""What the layers promise besides exact gradients: the loss they compute,
the ignore label, extreme logits, the layer contract and clear errors."""

import numpy as np
import pytest

from layers import (
    RNN,
    Affine,
    Embedding,
    SoftmaxWithLoss,
    TimeAffine,
    TimeEmbedding,
    TimeRNN,
    TimeSoftmaxWithLoss,
)
from models import SimpleRnnlm

N, T, D, H, V = 3, 4, 5, 6, 7


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# --- TimeSoftmaxWithLoss -----------------------------------------------------


def reference_loss(xs, ts):
    """-mean(log p[target]) computed the plain way, in float64."""
    x = xs.astype(np.float64).reshape(-1, xs.shape[-1])
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    t = ts.reshape(-1)
    keep = t != -1
    return -log_p[np.arange(t.size), t][keep].mean()


def test_loss_is_mean_negative_log_likelihood(rng):
    xs, ts = f32(rng, N, T, V) * 4, rng.integers(0, V, size=(N, T))
    assert TimeSoftmaxWithLoss().forward(xs, ts) == pytest.approx(reference_loss(xs, ts), rel=1e-6)


def test_ignored_positions_add_nothing(rng):
    xs, ts = f32(rng, N, T, V), rng.integers(0, V, size=(N, T))
    ts[0, :2] = -1
    layer = TimeSoftmaxWithLoss(ignore_label=-1)
    loss = layer.forward(xs, ts)
    dxs = layer.backward()

    # The mean runs over the 10 kept positions only ...
    assert loss == pytest.approx(reference_loss(xs, ts), rel=1e-6)
    # ... and the ignored positions get exactly zero gradient,
    assert not dxs[0, :2].any()
    # whatever their logits: changing them leaves the loss unchanged.
    xs2 = xs.copy()
    xs2[0, :2] += 100
    assert layer.forward(xs2, ts) == loss


def test_all_positions_ignored_gives_zero_loss_and_gradient(rng):
    layer = TimeSoftmaxWithLoss()
    assert layer.forward(f32(rng, N, T, V), np.full((N, T), -1)) == 0.0
    assert not layer.backward().any()


@pytest.mark.parametrize("magnitude", [1e4, -1e4])
def test_huge_logits_give_finite_loss_and_gradient(rng, magnitude):
    xs = f32(rng, N, T, V) * magnitude
    ts = rng.integers(0, V, size=(N, T))
    layer = TimeSoftmaxWithLoss()
    loss = layer.forward(xs, ts)
    dxs = layer.backward()
    assert np.isfinite(loss) and np.isfinite(dxs).all()
    assert loss == pytest.approx(reference_loss(xs, ts), rel=1e-5)
    # Every row of the gradient is softmax - onehot: it sums to zero.
    np.testing.assert_allclose(dxs.sum(axis=-1), 0, atol=1e-6)


def test_mixed_rows_huge_and_normal(rng):
    xs = f32(rng, N, T, V)
    xs[1, 2] *= 1e4  # one row would overflow exp, the others would not
    ts = rng.integers(0, V, size=(N, T))
    layer = TimeSoftmaxWithLoss()
    assert layer.forward(xs, ts) == pytest.approx(reference_loss(xs, ts), rel=1e-5)
    assert np.isfinite(layer.backward()).all()


def test_loss_at_logits_near_40_keeps_float32_precision():
    """Issue 12: the loss is taken with the row maximum subtracted. Written
    as log(sum(exp(x))) - x[t], it rounded at the scale of 40 first: its
    float32 error at logits near 40 was about 4x PyTorch's (RMS 1.1e-6 over
    single rows, PyTorch 2.2e-7; now 2.5e-7)."""
    errors = []
    layer = TimeSoftmaxWithLoss()
    for seed in range(200):
        r = np.random.default_rng(seed)
        xs = (40 + r.standard_normal((1, 1, 1000))).astype(np.float32)
        ts = r.integers(0, 1000, size=(1, 1))
        errors.append(layer.forward(xs, ts) - reference_loss(xs, ts))
    errors = np.array(errors)
    assert np.sqrt(np.mean(errors**2)) < 5e-7
    assert np.abs(errors).max() < 1.5e-6


@pytest.mark.parametrize("top", [79.0, 81.0, 88.0, -80.0])
def test_rows_near_the_ends_of_the_float_range_keep_their_loss(rng, top):
    """Maxima above 80 (exp(-m) near the smallest normal floats) and rows of
    very negative logits take the shifted path."""
    xs = f32(rng, N, T, V)
    xs[0, 0] += top - xs[0, 0].max()
    ts = rng.integers(0, V, size=(N, T))
    layer = TimeSoftmaxWithLoss()
    assert layer.forward(xs, ts) == pytest.approx(reference_loss(xs, ts), rel=1e-6)
    np.testing.assert_allclose(layer.backward().sum(axis=-1), 0, atol=1e-6)


@pytest.mark.parametrize("target_logit", [-60.0, 95.0])
def test_a_target_logit_far_from_the_rest_keeps_its_loss(rng, target_logit):
    """The loss is shifted by the target's logit; a target 100 below the row's
    maximum (the shifted sum overflows) or above 80 takes the stable path."""
    xs = f32(rng, N, T, V)
    ts = rng.integers(0, V, size=(N, T))
    xs[0, 0] = 0
    xs[0, 0, (ts[0, 0] + 1) % V] = 40
    xs[0, 0, ts[0, 0]] = target_logit
    layer = TimeSoftmaxWithLoss()
    assert layer.forward(xs, ts) == pytest.approx(reference_loss(xs, ts), rel=1e-6)
    np.testing.assert_allclose(layer.backward().sum(axis=-1), 0, atol=1e-6)


def test_large_logits_take_the_threaded_path_and_stay_exact(rng, monkeypatch):
    import common.parallel as parallel

    xs = f32(rng, 8, 16, 10000) * 3  # 1.3M logits: split over threads in blocks
    ts = rng.integers(0, 10000, size=(8, 16))
    ts[0, 0] = -1
    results = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(parallel, "_threads", threads)
        layer = TimeSoftmaxWithLoss()
        results.append((layer.forward(xs, ts), layer.backward().copy()))
    assert results[0][0] == pytest.approx(reference_loss(xs, ts), rel=1e-6)
    # Bit-for-bit the same whatever the number of threads.
    for loss, dxs in results[1:]:
        assert loss == results[0][0]
        np.testing.assert_array_equal(dxs, results[0][1])


def test_one_step_softmax_with_loss_matches_time_version(rng):
    x, t = f32(rng, N, V), rng.integers(0, V, size=N)
    one, time = SoftmaxWithLoss(), TimeSoftmaxWithLoss()
    assert one.forward(x, t) == pytest.approx(time.forward(x[:, None], t[:, None]), rel=1e-6)
    np.testing.assert_allclose(one.backward(), time.backward()[:, 0], rtol=1e-5, atol=1e-7)


def test_loss_dtype_stays_float32(rng):
    layer = TimeSoftmaxWithLoss()
    layer.forward(f32(rng, N, T, V), rng.integers(0, V, size=(N, T)))
    assert layer.backward().dtype == np.float32


# --- the layer contract ---------------------------------------------------------


def test_grads_are_overwritten_in_place_not_rebound(rng):
    layer = TimeRNN(f32(rng, D, H), f32(rng, H, H), f32(rng, H))
    grads_before = [id(g) for g in layer.grads]
    for _ in range(2):
        layer.forward(f32(rng, N, T, D))
        layer.backward(f32(rng, N, T, H))
    assert [id(g) for g in layer.grads] == grads_before
    assert all(g.dtype == np.float32 for g in layer.grads)


def test_time_rnn_equals_its_cell_step_by_step(rng):
    Wx, Wh, b = f32(rng, D, H), f32(rng, H, H), f32(rng, H)
    xs, dhs = f32(rng, N, T, D), f32(rng, N, T, H)
    layer = TimeRNN(Wx, Wh, b)
    hs = layer.forward(xs)
    dxs = layer.backward(dhs)

    cells = [RNN(Wx, Wh, b) for _ in range(T)]
    h = np.zeros((N, H), np.float32)
    for t, cell in enumerate(cells):
        h = cell.forward(xs[:, t], h)
        np.testing.assert_allclose(hs[:, t], h, rtol=1e-5, atol=1e-6)
    dh = np.zeros_like(h)
    dWx = np.zeros_like(Wx)
    for t in reversed(range(T)):
        dx, dh = cells[t].backward(dhs[:, t] + dh)
        dWx += cells[t].grads[0]
        np.testing.assert_allclose(dxs[:, t], dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.grads[0], dWx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.dh, dh, rtol=1e-5, atol=1e-5)


def test_stateful_and_stateless(rng):
    xs = f32(rng, N, T, D)
    weights = f32(rng, D, H), f32(rng, H, H), f32(rng, H)
    stateful, stateless = TimeRNN(*weights, stateful=True), TimeRNN(*weights)
    first = stateful.forward(xs)
    np.testing.assert_array_equal(stateless.forward(xs), first)
    # The stateful layer continues from where it stopped; the other restarts.
    assert not np.array_equal(stateful.forward(xs), first)
    np.testing.assert_array_equal(stateless.forward(xs), first)
    stateful.reset_state()
    np.testing.assert_array_equal(stateful.forward(xs), first)


def test_same_seed_same_model():
    a, b = SimpleRnnlm(50, 8, 8, seed=7), SimpleRnnlm(50, 8, 8, seed=7)
    c = SimpleRnnlm(50, 8, 8, seed=8)
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params, strict=True))
    assert not np.array_equal(a.params[0], c.params[0])
    assert all(p.dtype == np.float32 for p in a.params)
    assert [p.shape for p in a.params] == [(50, 8), (8, 8), (8, 8), (8,), (8, 50), (50,)]


# --- clear errors on bad input ----------------------------------------------------


def test_embedding_gradient_for_many_repeated_ids(rng):
    # 20 x 35 ids of only V = 7 words: every word repeats; compare with row-wise add.at.
    W = f32(rng, V, D)
    xs = rng.integers(0, V, size=(20, 35))
    dout = f32(rng, 20, 35, D)
    layer = TimeEmbedding(W)
    layer.forward(xs)
    layer.backward(dout)
    expected = np.zeros_like(W)
    np.add.at(expected, xs.reshape(-1), dout.reshape(-1, D))
    np.testing.assert_allclose(layer.grads[0], expected, rtol=1e-5, atol=1e-5)


def test_embedding_of_a_column_major_table_adds_up_repeated_ids(rng):
    # A Fortran-order W has a Fortran-order dW, which has no flat view to scatter into.
    W = f32(rng, V, D)
    xs = np.array([[1, 3, 1, 0, 1]])
    dout = f32(rng, 1, 5, D)
    grads = []
    for table in (W, np.asfortranarray(W)):
        layer = TimeEmbedding(table)
        layer.forward(xs)
        layer.backward(dout)
        grads.append(layer.grads[0])
    assert not grads[1].flags.c_contiguous
    np.testing.assert_array_equal(grads[1], grads[0])
    np.testing.assert_allclose(grads[0][1], dout[0, [0, 2, 4]].sum(axis=0), rtol=1e-6)


def test_embedding_rejects_out_of_range_and_non_integer_ids(rng):
    layer = TimeEmbedding(f32(rng, V, D))
    with pytest.raises(ValueError, match=r"id 7.*\[0, 7\)"):
        layer.forward(np.array([[0, 7]]))
    with pytest.raises(ValueError, match="id -1"):
        layer.forward(np.array([[-1, 2]]))
    with pytest.raises(TypeError, match="integer"):
        layer.forward(np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"\(N, T\)"):
        layer.forward(np.array([0, 1]))
    with pytest.raises(ValueError, match="id 9"):
        Embedding(f32(rng, V, D)).forward(np.array([9]))


def test_loss_rejects_bad_targets(rng):
    layer, xs = TimeSoftmaxWithLoss(), f32(rng, N, T, V)
    with pytest.raises(ValueError, match="id 7"):
        layer.forward(xs, np.full((N, T), 7))
    with pytest.raises(TypeError, match="integer"):
        layer.forward(xs, np.zeros((N, T), np.float32))
    with pytest.raises(ValueError, match="ts must have shape"):
        layer.forward(xs, np.zeros((N, T + 1), int))
    with pytest.raises(ValueError, match=r"\(N, T, V\)"):
        layer.forward(xs[0], np.zeros((N, T), int))


def test_layers_reject_mismatched_shapes_and_dtypes(rng):
    with pytest.raises(ValueError, match="expects D = 5"):
        TimeAffine(f32(rng, D, V), f32(rng, V)).forward(f32(rng, N, T, D + 1))
    with pytest.raises(ValueError, match=r"\(N, T, D\)"):
        TimeAffine(f32(rng, D, V), f32(rng, V)).forward(f32(rng, N, D))
    with pytest.raises(ValueError, match="expects D = 5"):
        Affine(f32(rng, D, V), f32(rng, V)).forward(f32(rng, N, D + 1))
    with pytest.raises(TypeError, match="float64.*float32"):
        TimeRNN(f32(rng, D, H), f32(rng, H, H), f32(rng, H)).forward(rng.standard_normal((N, T, D)))
    with pytest.raises(ValueError, match="Wx \\(D, H\\), Wh \\(H, H\\)"):
        TimeRNN(f32(rng, D, H), f32(rng, H, H + 1), f32(rng, H))
    layer = TimeRNN(f32(rng, D, H), f32(rng, H, H), f32(rng, H), stateful=True)
    layer.forward(f32(rng, N, T, D))
    with pytest.raises(ValueError, match="reset_state"):
        layer.forward(f32(rng, N + 1, T, D))


# --- common.functions.sigmoid -------------------------------------------------


def test_sigmoid_is_exact_at_any_magnitude_and_quiet():
    """The one sigmoid of rnnlab (the LSTM and GRU layers use its in-place
    form): no overflow warning, and full relative precision for large
    negative arguments, where (1 + tanh(x / 2)) / 2 rounds to 0 in float32."""
    import warnings

    from common.functions import sigmoid, sigmoid_

    x = np.array([-80, -30, -20, -1, 0, 1, 20, 100], dtype=np.float32)
    exact = 1 / (1 + np.exp(-x.astype(np.float64)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = sigmoid(x)
        assert sigmoid(np.float32(-1e4)) == 0  # exp overflows to inf, quietly
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, exact, rtol=1e-6, atol=0)
    # In place, with a slope per column: sigmoid(2a) = (tanh(a) + 1) / 2.
    a = np.array([[0.3, -0.7]], dtype=np.float32)
    out = sigmoid_(a.copy(), slope=np.array([1, 2], dtype=np.float32))
    np.testing.assert_allclose(out, [[exact_sigmoid(0.3), (np.tanh(-0.7) + 1) / 2]], rtol=1e-6)
    b = a.copy()
    assert sigmoid_(b) is b


def test_sigmoid_of_a_python_number_is_float64():
    # (Before: NumPy's promotion rules gave float16, 0.6226 for sigmoid(0.5).)
    from common.functions import sigmoid

    assert sigmoid(0.5).dtype == np.float64 and sigmoid(0.5) == exact_sigmoid(0.5)
    assert sigmoid([0, 2]).dtype == np.float64
    assert sigmoid(np.float32(0.5)).dtype == np.float32


def exact_sigmoid(v):
    return 1 / (1 + np.exp(-v))


# --- common.functions.cross_entropy_error ---------------------------------------


def test_cross_entropy_error_takes_the_books_one_row_form_and_refuses_other_ids():
    from common.functions import cross_entropy_error, softmax

    y = softmax(np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]))
    expected = -(np.log(y[0, 2]) + np.log(y[1, 0])) / 2
    # rel=1e-9: the function takes log(p + 1e-12).
    assert cross_entropy_error(y, np.array([2, 0])) == pytest.approx(expected, rel=1e-9)
    assert cross_entropy_error(y[0], 2) == pytest.approx(-np.log(y[0, 2]), rel=1e-9)
    # -1 is the loss layers' ignore label; here it would score the last class.
    with pytest.raises(ValueError, match=r"t holds the id -1, outside the class range \[0, 3\)"):
        cross_entropy_error(y, np.array([-1, 0]))
    with pytest.raises(ValueError, match=r"t holds the id 3"):
        cross_entropy_error(y, np.array([3, 0]))
    with pytest.raises(TypeError, match="t must hold integer class ids, got dtype float64"):
        cross_entropy_error(y, np.array([2.0, 0.0]))
    with pytest.raises(ValueError, match=r"t has shape \(3,\) but y has 2 rows"):
        cross_entropy_error(y, np.array([2, 0, 1]))
