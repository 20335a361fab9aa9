"""Tests for common.optimizer: what each optimizer does, and how to use it.

The pattern in every test is the training loop's::

    optimizer.update(params, grads)   # params changed in place; grads only read
"""

import io

import numpy as np
import pytest

from common.optimizer import SGD, AdaGrad, Adam, Momentum, RMSprop
from common.parallel import managed

# One instance of each optimizer, with non-default hyperparameters so that
# restoring them from a state dict is visible.
MAKERS = {
    "SGD": lambda: SGD(lr=0.1),
    "Momentum": lambda: Momentum(lr=0.05, momentum=0.8),
    "AdaGrad": lambda: AdaGrad(lr=0.5, eps=1e-9),
    "RMSprop": lambda: RMSprop(lr=0.01, alpha=0.9, eps=1e-7),
    "Adam": lambda: Adam(lr=0.05, beta1=0.8, beta2=0.99, eps=1e-7),
}
CLASSES = {"SGD": SGD, "Momentum": Momentum, "AdaGrad": AdaGrad, "RMSprop": RMSprop, "Adam": Adam}
SHAPES = [(3, 4), (5,)]


def random_arrays(rng, dtype=np.float64):
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def grad_sequence(steps, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [random_arrays(rng, dtype) for _ in range(steps)]


@pytest.mark.parametrize("name", MAKERS)
def test_minimises_a_quadratic(name):
    # f(p) = 0.5 * sum((p - target)^2) over two arrays; its gradient is p - target.
    rng = np.random.default_rng(0)
    targets = [rng.uniform(-1, 1, shape) for shape in SHAPES]
    params = [np.zeros(shape) for shape in SHAPES]
    optimizer = MAKERS[name]()
    for _ in range(500):
        grads = [p - target for p, target in zip(params, targets, strict=True)]
        optimizer.update(params, grads)
    for p, target in zip(params, targets, strict=True):
        np.testing.assert_allclose(p, target, atol=0.02)


# The same updates in torch.optim, with its single-tensor (for-loop) code path.
TORCH_MAKERS = {
    "SGD": lambda torch, ps: torch.optim.SGD(ps, lr=0.1, foreach=False),
    "Momentum": lambda torch, ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, foreach=False),
    "AdaGrad": lambda torch, ps: torch.optim.Adagrad(ps, lr=0.5, eps=1e-9, foreach=False),
    "RMSprop": lambda torch, ps: torch.optim.RMSprop(
        ps, lr=0.01, alpha=0.9, eps=1e-7, foreach=False
    ),
    "Adam": lambda torch, ps: torch.optim.Adam(
        ps, lr=0.05, betas=(0.8, 0.99), eps=1e-7, foreach=False
    ),
}


@pytest.mark.parametrize("name", MAKERS)
def test_matches_torch_optim(name):
    torch = pytest.importorskip("torch")
    params = random_arrays(np.random.default_rng(0))
    torch_params = [torch.tensor(p, requires_grad=True) for p in params]
    optimizer = MAKERS[name]()
    torch_optimizer = TORCH_MAKERS[name](torch, torch_params)

    for step, grads in enumerate(grad_sequence(20)):
        if step == 10:  # learning-rate decay between steps, on both sides
            optimizer.lr *= 0.5
            for group in torch_optimizer.param_groups:
                group["lr"] *= 0.5
        optimizer.update(params, grads)
        for tp, g in zip(torch_params, grads, strict=True):
            tp.grad = torch.tensor(g)
        torch_optimizer.step()

    for p, tp in zip(params, torch_params, strict=True):
        assert p.dtype == np.float64
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", MAKERS)
def test_tied_weights_are_updated_once_with_the_summed_gradient(name):
    # [W, b, W]: W is listed twice (say, as embedding and output weight).
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 3))
    b = rng.standard_normal(3)
    W_untied, b_untied = W.copy(), b.copy()
    tied, untied = MAKERS[name](), MAKERS[name]()

    for _ in range(3):
        grads = [rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((4, 3))]
        g1, gb, g2 = grads
        saved = [g.copy() for g in grads]

        tied.update([W, b, W], grads)
        untied.update([W_untied, b_untied], [g1 + g2, gb])

        # The caller's gradients are only read, not summed into.
        for g, g_saved in zip(grads, saved, strict=True):
            np.testing.assert_array_equal(g, g_saved)

    np.testing.assert_array_equal(W, W_untied)
    np.testing.assert_array_equal(b, b_untied)
    # State is kept per distinct array: two entries, not three.
    assert not any(key.endswith(".2") for key in tied.state_dict())


@pytest.mark.parametrize("name", MAKERS)
def test_an_array_listed_three_times_gets_all_three_gradients(name):
    rng = np.random.default_rng(1)
    W = rng.standard_normal((4, 3))
    W_once = W.copy()
    tied, once = MAKERS[name](), MAKERS[name]()
    for _ in range(3):
        g1, g2, g3 = (rng.standard_normal((4, 3)) for _ in range(3))
        tied.update([W, W, W], [g1, g2, g3])
        once.update([W_once], [g1 + g2 + g3])
    np.testing.assert_allclose(W, W_once, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", [n for n in MAKERS if n != "SGD"])  # (SGD keeps no state)
def test_a_float64_state_loaded_for_float32_params_is_cast_to_float32(name):
    rng = np.random.default_rng(2)
    params64 = random_arrays(rng)
    source = MAKERS[name]()
    source.update(params64, random_arrays(rng))  # a float64 state
    params = [p.astype(np.float32) for p in params64]
    optimizer = CLASSES[name]()
    optimizer.update(params, random_arrays(rng, np.float32))  # state made for these params
    optimizer.load_state_dict(source.state_dict())
    optimizer.update(params, random_arrays(rng, np.float32))
    assert all(p.dtype == np.float32 for p in params)
    arrays = [v for v in optimizer.state_dict().values() if isinstance(v, np.ndarray)]
    assert arrays and all(a.dtype == np.float32 for a in arrays)


@pytest.mark.parametrize("name", MAKERS)
def test_updates_in_place_and_keeps_float32(name):
    params = random_arrays(np.random.default_rng(0), np.float32)
    same_objects = list(params)
    before = [p.copy() for p in params]
    optimizer = MAKERS[name]()
    optimizer.lr = np.float64(optimizer.lr)  # as read back from an .npz file

    for grads in grad_sequence(3, dtype=np.float32):
        optimizer.update(params, grads)

    for p, original, old in zip(params, same_objects, before, strict=True):
        assert p is original  # never rebound: the layers holding it see the change
        assert p.dtype == np.float32
        assert not np.array_equal(p, old)
    for value in optimizer.state_dict().values():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32


@pytest.mark.parametrize("name", MAKERS)
def test_state_dict_round_trip_through_npz_continues_bit_identically(name):
    k = 5
    grads = grad_sequence(2 * k)
    params = random_arrays(np.random.default_rng(0))
    optimizer = MAKERS[name]()
    for step in range(k):
        optimizer.update(params, grads[step])

    state = optimizer.state_dict()
    resumed_params = [p.copy() for p in params]

    # Straight on: 2k steps without interruption.
    for step in range(k, 2 * k):
        optimizer.update(params, grads[step])

    # Save the state in an .npz file, load it into a fresh optimizer (default
    # hyperparameters: load_state_dict restores the saved ones), go on.
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    resumed = CLASSES[name]()
    resumed.load_state_dict(np.load(buffer))
    assert repr(resumed) == repr(optimizer)
    for step in range(k, 2 * k):
        resumed.update(resumed_params, grads[step])

    for p, q in zip(params, resumed_params, strict=True):
        np.testing.assert_array_equal(p, q)
    assert resumed.t == optimizer.t == 2 * k


def test_state_dict_is_flat_and_named_after_the_math():
    params = random_arrays(np.random.default_rng(0))
    optimizer = Adam()
    assert optimizer.state_dict() == {
        "lr": 0.001,
        "t": 0,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
    }  # no state before the first update
    optimizer.update(params, grad_sequence(1)[0])
    assert sorted(optimizer.state_dict()) == sorted(
        ["lr", "t", "beta1", "beta2", "eps", "m.0", "m.1", "v.0", "v.1"]
    )


@pytest.mark.parametrize("name", ["Momentum", "Adam"])
def test_mismatched_state_raises_value_error(name):
    params = random_arrays(np.random.default_rng(0))
    optimizer = MAKERS[name]()
    optimizer.update(params, grad_sequence(1)[0])
    state = optimizer.state_dict()

    missing = {key: value for key, value in state.items() if key != "v.0"}
    with pytest.raises(ValueError, match=r"missing keys \['v.0'\]"):
        CLASSES[name]().load_state_dict(missing)

    # Without every '.1' entry it is a valid state for one parameter, which the
    # optimizer that has seen its two parameters refuses at once.
    one_param = {key: value for key, value in state.items() if not key.endswith(".1")}
    with pytest.raises(ValueError, match="2 distinct parameters"):
        optimizer.load_state_dict(one_param)

    no_lr = {key: value for key, value in state.items() if key != "lr"}
    with pytest.raises(ValueError, match="lr"):
        CLASSES[name]().load_state_dict(no_lr)

    with pytest.raises(ValueError, match="unexpected"):
        CLASSES[name]().load_state_dict({**state, "w.0": np.zeros(3)})

    wrong_shape = {**state, "v.1": np.zeros((2, 2))}
    if name == "Adam":
        wrong_shape["m.1"] = np.zeros((2, 2))
    # An optimizer that has seen its parameters checks at once ...
    with pytest.raises(ValueError, match="shape"):
        optimizer.load_state_dict(wrong_shape)
    # ... a fresh one at its first update.
    fresh = CLASSES[name]()
    fresh.load_state_dict(wrong_shape)
    with pytest.raises(ValueError, match="shape"):
        fresh.update(params, grad_sequence(1)[0])

    # State for two parameters does not fit three.
    fresh = CLASSES[name]()
    fresh.load_state_dict(state)
    with pytest.raises(ValueError, match="3 distinct parameters"):
        fresh.update([*params, np.zeros(2)], [*grad_sequence(1)[0], np.zeros(2)])


def test_learning_rate_change_takes_effect_at_the_next_step():
    p = np.array([1.0, -2.0])
    g = np.array([0.5, 0.25])
    optimizer = SGD(lr=0.1)
    optimizer.update([p], [g])
    np.testing.assert_array_equal(p, [1.0 - 0.1 * 0.5, -2.0 - 0.1 * 0.25])

    optimizer.lr = 0.0  # e.g. a trainer decaying lr
    optimizer.update([p], [g])
    np.testing.assert_array_equal(p, [1.0 - 0.1 * 0.5, -2.0 - 0.1 * 0.25])


def test_mismatched_grads_raise_value_error():
    p = np.zeros((2, 3))
    with pytest.raises(ValueError, match="shape"):
        SGD().update([p], [np.zeros(3)])  # would silently broadcast otherwise
    with pytest.raises(ValueError, match="1 params but 2 grads"):
        SGD().update([p], [np.zeros((2, 3)), np.zeros((2, 3))])


class _WholeArrays:
    """The same optimizer with each update on whole arrays, as written above
    ``_step``: what the blocks of rows must reproduce, bit for bit."""

    def _apply(self, params, grads, lr):
        states = [self.state[name] for name in self.state_names]
        for p, g, *state in zip(params, grads, *states, strict=True):
            self._step(lr, p, g, *state)


@pytest.mark.parametrize("name", MAKERS)
def test_blocks_of_rows_give_the_bits_of_whole_arrays(name):
    # (1100, 1000) is above MIN_PARALLEL_ELEMENTS: cut into blocks of rows and,
    # with two threads or more, shared among them; (7,) and a 0-d array stay whole.
    rng = np.random.default_rng(0)
    shapes = [(1100, 1000), (7,), ()]
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    whole_params = [p.copy() for p in params]
    blocks = MAKERS[name]()
    whole = type(f"Whole{name}", (_WholeArrays, CLASSES[name]), {})()
    whole.load_state_dict(blocks.state_dict())  # the same hyperparameters
    for _ in range(3):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        with managed():  # as the trainer runs it: rnnlab holds the cores
            blocks.update(params, grads)
        whole.update(whole_params, grads)
    for p, q in zip(params, whole_params, strict=True):
        assert p.dtype == np.float32
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("name", ["SGD", "Momentum", "Adam"])
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_optimizer_updates_the_arrays_it_is_given(name, how):
    """A copy held copies of the arrays its index pointed at, under the
    original list's ids: it updated those, and the model stayed as it was."""
    import copy
    import pickle

    W, b = np.ones((3, 3), np.float32), np.zeros(3, np.float32)
    grads = [np.full((3, 3), 0.5, np.float32), np.full(3, 0.5, np.float32)]
    optimizer = MAKERS[name]()
    optimizer.update([W, b], grads)
    def copied():
        return (copy.deepcopy(optimizer) if how == "deepcopy"
                else pickle.loads(pickle.dumps(optimizer)))

    W2, b2 = W.copy(), b.copy()  # a copied model, given to a copied optimizer
    copied().update([W2, b2], grads)
    W_before = W.copy()
    copied().update([W, b], grads)  # the original model, given to another copy
    assert not np.array_equal(W, W_before)
    np.testing.assert_array_equal(W, W2)
    np.testing.assert_array_equal(b, b2)


@pytest.mark.parametrize("name, entry, value, message", [
    ("Adam", "beta1", 1.0, "beta1 must be a number in"),
    ("Adam", "eps", -1.0, "eps must be a finite number > 0"),
    ("Momentum", "momentum", 3.0, "momentum must be a number in"),
    ("RMSprop", "alpha", 2.0, "alpha must be a number in"),
    ("SGD", "lr", float("nan"), "lr must be a finite number"),
    ("SGD", "lr", True, "'lr' must be a number"),
    ("SGD", "t", float("inf"), "'t' must be a non-negative integer"),
    ("SGD", "t", "3", "'t' must be a number"),
])
def test_a_state_dict_is_held_to_the_constructors_checks(name, entry, value, message):
    optimizer = MAKERS[name]()
    state = {**optimizer.state_dict(), entry: value}
    with pytest.raises(ValueError, match=message):
        optimizer.load_state_dict(state)
    assert optimizer.state_dict() == MAKERS[name]().state_dict()  # nothing changed


@pytest.mark.parametrize("params, message", [
    ([[1.0, 2.0]], "params.0. must be a float array, updated in place, got a list"),
    ([np.arange(2)], "params.0. must be a float array, updated in place, got dtype int64"),
])
def test_params_that_cannot_be_updated_in_place_are_refused_in_words(params, message):
    with pytest.raises(TypeError, match=message):
        SGD(0.1).update(params, [np.zeros(2)])


@pytest.mark.parametrize("key", ["m.00", "m.\u0663", "m.+1"])
def test_a_state_key_state_dict_never_writes_is_unexpected(key):
    optimizer = Adam(0.1)
    optimizer.update([np.ones(2)], [np.ones(2)])
    state = {**optimizer.state_dict(), key: np.zeros(2)}
    with pytest.raises(ValueError, match="unexpected keys"):
        optimizer.load_state_dict(state)


def test_an_optimizer_of_ones_own_reloads_its_own_state():
    """load_state_dict checks the hyperparameters it knows by name; one of
    one's own (stored as a float, as every hyperparameter) is its class's."""

    class WarmupAdam(Adam):
        hyper_names = (*Adam.hyper_names, "warmup")

        def __init__(self, lr=0.001, warmup=10):
            if not isinstance(warmup, int):
                raise ValueError(f"warmup must be an int, got {warmup!r}")
            super().__init__(lr)
            self.warmup = warmup

    optimizer = WarmupAdam(warmup=10)
    optimizer.update([np.ones(2)], [np.ones(2)])
    other = WarmupAdam(warmup=3)
    other.load_state_dict(optimizer.state_dict())
    assert other.warmup == 10 and other.t == 1
    with pytest.raises(ValueError, match="beta1 must be a number in"):
        other.load_state_dict({**optimizer.state_dict(), "beta1": 1.0})


def test_hyperparameters_set_after_construction_are_checked_at_the_update():
    # (beta2 = 1.0 set on the object made every parameter NaN at the next step.)
    W = np.ones((2, 2), np.float32)
    adam = Adam(lr=0.1)
    adam.beta2 = 1.0
    with pytest.raises(ValueError, match=r"beta2 must be a number in \[0, 1\), got 1.0"):
        adam.update([W], [np.ones_like(W)])
    assert np.isfinite(W).all() and adam.t == 0


def test_an_empty_update_binds_no_state():
    # (Momentum().update([], []) made every later update refuse the real parameters.)
    W = np.ones(3)
    momentum = Momentum(lr=0.1)
    momentum.update([], [])
    momentum.update([W], [np.ones(3)])
    np.testing.assert_allclose(W, 0.9)
