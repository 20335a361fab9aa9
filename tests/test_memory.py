"""The memory estimate made before training: the parameter shapes it counts
are the models' own, and the estimate is compared with what is available."""

import math

import pytest

from common.memory import (
    NotEnoughMemory,
    available_bytes,
    check_memory,
    estimate_training_bytes,
    language_model_shapes,
)
from models import build_model


@pytest.mark.parametrize("kind, D, H, tie", [("simple", 6, 7, False), ("lstm", 6, 7, False),
                                             ("gru", 6, 7, False), ("better", 6, 7, False),
                                             ("better", 8, 8, True)])
def test_the_shapes_counted_are_those_of_the_built_model(kind, D, H, tie):
    model = build_model(kind, 30, wordvec_size=D, hidden_size=H, num_layers=2,
                        tie_weights=tie if kind == "better" else None, seed=0)
    built = sorted(p.shape for p in model.named_params().values())
    assert sorted(language_model_shapes(kind, 30, D, H, num_layers=2, tied=tie)) == built


def test_estimate_counts_parameters_optimizer_activations_and_logits():
    shapes = language_model_shapes("simple", 10000, 100, 100)
    n = sum(math.prod(s) for s in shapes)
    sgd = estimate_training_bytes(shapes, 20, 35, "SGD")
    adam = estimate_training_bytes(shapes, 20, 35, "Adam")
    assert sgd["parameters"] == 2 * 4 * n and sgd["optimizer"] == 0
    assert adam["optimizer"] == 2 * 4 * n
    assert sgd["logits"] == 3 * 20 * 35 * 10000 * 4
    assert sgd["initialisation"] == 2 * 8 * 100 * 10000  # float64 draws of the largest
    # The size the kernel once killed (--hidden-size 50000 on the demo's 418
    # words, 24 GiB): its weights alone are 10 GB, the estimate far more.
    big = estimate_training_bytes(language_model_shapes("simple", 418, 100, 50000), 10, 5)
    assert big["total"] > 40e9
    assert sgd["total"] > sum(v for k, v in sgd.items() if k != "total")


def test_check_memory_refuses_with_the_estimate_and_the_limit():
    estimate = estimate_training_bytes(language_model_shapes("lstm", 10000, 50000, 50000),
                                       20, 35)
    with pytest.raises(NotEnoughMemory, match=r"needs about [\d.]+ GiB of memory \(parameters "
                                              r".* but only 1.00 GiB is available; try less"):
        check_memory(estimate, 2**30, hint="; try less")
    check_memory(estimate, None)  # unknown: no refusal
    check_memory(estimate, estimate["total"])
    assert available_bytes() is None or available_bytes() > 0
