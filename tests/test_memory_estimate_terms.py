"""Each term of the memory estimate, as common.memory's docstring states it,
for a configuration small enough to count by hand; and what a control
group's limit leaves for a run (the interpreter already counted in its
usage).

The whole estimate is compared, so that a term cut, changed or added
fails here.
"""

import pytest

from common import memory
from common.memory import (
    ADDRESS_SPACE,
    AS_GROWTH_BYTES,
    BASE_BYTES,
    CGROUP,
    MACHINE,
    NotEnoughMemory,
    available_bytes,
    check_memory,
    estimate_training_bytes,
    language_model_shapes,
)

# An LSTM language model of V = 50 words, D = 6, H = 7 (4 gates: 28 columns).
V, D, H = 50, 6, 7
N_PARAMS = V * D + (D * 28 + H * 28 + 28) + (H * V + V)  # embedding, LSTM, affine


@pytest.mark.parametrize("optimizer, itemsize, copies", [("SGD", 4, 0), ("Adam", 8, 2)])
def test_every_term_of_a_small_lstms_estimate_counted_by_hand(optimizer, itemsize, copies):
    """Batches of 3 rows of 5 steps: 15 rows a step. Each weight matrix (D, M)
    gives 15 * M outputs, three copies (the forward's, the cached one, and
    backward's); the output matrix's outputs are the logits, counted with
    their softmax and gradient as three 15 * V arrays, and not again as
    activations."""
    shapes = language_model_shapes("lstm", V, D, H)
    assert shapes == [(V, D), (D, 28), (H, 28), (28,), (H, V), (V,)]
    rows = 3 * 5
    expected = {
        "parameters": 2 * N_PARAMS * itemsize,  # and their gradients
        "optimizer": copies * N_PARAMS * itemsize,
        "activations": 3 * rows * (D + 28 + 28) * itemsize,  # embedding, Wx, Wh
        "logits": 3 * rows * V * itemsize,
        "initialisation": 2 * 8 * (H * V),  # two float64 draws of the largest, Wout
    }
    expected["total"] = sum(expected.values()) + BASE_BYTES
    assert estimate_training_bytes(shapes, 3, 5, optimizer, itemsize) == expected


def test_tied_weights_leave_the_last_recurrent_matrix_among_the_activations():
    """BetterRnnlm ties the output layer to the embedding (D = H): there is no
    output matrix, and the last one, the top layer's Wh, gives activations
    like any other (leaving out the last matrix dropped it instead)."""
    shapes = language_model_shapes("better", V, H, H, num_layers=2, tied=True)
    assert shapes[-2:] == [(28,), (V,)]  # the top layer's bias, the output bias
    estimate = estimate_training_bytes(shapes, 3, 5)
    assert estimate["activations"] == 3 * 15 * (H + 4 * 28) * 4  # embedding, 2 x (Wx, Wh)
    assert estimate["logits"] == 3 * 15 * V * 4


def test_an_evaluations_rows_count_for_the_activations_as_for_the_logits():
    """eval_perplexity runs 10 x 35 rows a step, more than a training step
    of 3 x 5: the larger is the step the estimate counts."""
    estimate = estimate_training_bytes(language_model_shapes("lstm", V, D, H), 3, 5,
                                       eval_rows=350)
    assert estimate["activations"] == 3 * 350 * (D + 28 + 28) * 4
    assert estimate["logits"] == 3 * 350 * V * 4


def test_a_control_groups_limit_leaves_the_interpreter_already_counted_in_its_usage(
        monkeypatch):
    """The group's usage holds this process's interpreter already: of the
    estimate's total, BASE_BYTES is not to come under that limit, so the
    room for the run is what is left plus BASE_BYTES. The machine's
    available memory is all to come: no credit. A run fits under the group
    with exactly total - BASE_BYTES left, and one byte less is refused,
    naming the group."""
    estimate = estimate_training_bytes(language_model_shapes("lstm", V, D, H), 3, 5)
    assert memory.credit(CGROUP, estimate) == BASE_BYTES
    assert memory.credit(MACHINE, estimate) == 0

    need = estimate["total"] - BASE_BYTES
    monkeypatch.setattr(memory, "memory_limits", lambda: {CGROUP: need})
    assert available_bytes(estimate) == estimate["total"]
    check_memory(estimate, available_bytes(estimate))  # fits, to the byte

    monkeypatch.setattr(memory, "memory_limits", lambda: {CGROUP: need - 1})
    refusal = (r"under the memory limit of the process's control group \(cgroup\) .*"
               r"that limit does not bind: the interpreter, already in its usage\), "
               r"but only \d+ MiB is left under it, 1 MiB short")
    with pytest.raises(NotEnoughMemory, match=refusal):
        check_memory(estimate, available_bytes(estimate))

    monkeypatch.setattr(memory, "memory_limits", lambda: {MACHINE: need})  # no credit
    assert available_bytes(estimate) == need
    with pytest.raises(NotEnoughMemory, match="of memory"):
        check_memory(estimate, available_bytes(estimate))


def test_an_address_space_refusal_names_the_helper_only_where_there_is_one(monkeypatch):
    """One thread, no helper: the credit against ``ulimit -v`` is the
    interpreter already mapped, less what the mappings grow by; the refusal
    named "the helper's own process" too, with no helper in the run."""
    from common import parallel

    monkeypatch.setattr(parallel, "num_threads", lambda: 1)
    estimate = estimate_training_bytes(language_model_shapes("lstm", V, D, H), 3, 5)
    assert "helper process" not in estimate
    assert memory.credit(ADDRESS_SPACE, estimate) == BASE_BYTES - AS_GROWTH_BYTES
    monkeypatch.setattr(memory, "memory_limits", lambda: {ADDRESS_SPACE: 2**20})
    with pytest.raises(NotEnoughMemory) as refused:
        check_memory(estimate, available_bytes(estimate))
    assert "that limit does not bind: the interpreter already mapped), but only" in \
        str(refused.value)

