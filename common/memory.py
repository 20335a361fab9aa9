"""Will a training run fit in memory? An estimate made before anything big
is allocated, and the memory the machine has available.

The estimate counts, in the training dtype: the parameters, their gradients
and the optimizer's state (Adam two arrays a parameter, Momentum, AdaGrad
and RMSprop one, SGD none); one step's activations (each weight matrix
``(D, M)`` gives ``N * T * M`` outputs, cached for backward and once more
in backward: three copies); and the output layer's logits, their softmax
and gradient (three ``N * T * V`` arrays); and the float64 temporaries the
initialisation draws the largest weight in. It is a lower bound of what
NumPy will hold at the peak, good enough to refuse runs that cannot fit.
"""

import math
import os

# Bytes of the interpreter, NumPy and BLAS before any array (measured about
# 60-70 MiB for the demo; rounded up).
BASE_BYTES = 100 * 2**20
OPTIMIZER_COPIES = {"SGD": 0, "Momentum": 1, "AdaGrad": 1, "RMSprop": 1, "Adam": 2}
GATES = {"simple": 1, "lstm": 4, "gru": 3, "better": 4}


class NotEnoughMemory(MemoryError):
    """A run whose estimated peak memory exceeds what is available."""


def language_model_shapes(model: str, vocab_size: int, wordvec_size: int, hidden_size: int,
                          num_layers: int = 1, tied: bool = False) -> list[tuple]:
    """Parameter shapes of the command line's models (``--model``), computed
    without building them."""
    V, D, H, g = vocab_size, wordvec_size, hidden_size, GATES[model]
    shapes = [(V, D)]
    layers = num_layers if model == "better" else 1
    for i in range(layers):
        shapes += [(D if i == 0 else H, g * H), (H, g * H), (g * H,)]
        if model == "gru":
            shapes.append((g * H,))  # separate biases of the input and recurrent products
    if not tied:
        shapes.append((H, V))
    shapes.append((V,))
    return shapes


def estimate_training_bytes(shapes, batch_size: int, time_size: int, optimizer: str = "SGD",
                            itemsize: int = 4) -> dict:
    """``{'parameters', 'optimizer', 'activations', 'logits', 'total'}`` in bytes."""
    n_params = sum(math.prod(s) for s in shapes)
    rows = batch_size * time_size
    matrices = [s for s in shapes if len(s) == 2]
    vocab = shapes[-1][0]
    parts = {
        "parameters": 2 * n_params * itemsize,  # and their gradients
        "optimizer": OPTIMIZER_COPIES.get(optimizer, 2) * n_params * itemsize,
        "activations": 3 * rows * sum(s[1] for s in matrices[:-1] or matrices) * itemsize,
        "logits": 3 * rows * vocab * itemsize,
        # The initialisation draws each array in float64 and casts it: two
        # float64 temporaries (the draw and its scaled copy) of the largest.
        "initialisation": 2 * 8 * max(math.prod(s) for s in shapes),
    }
    parts["total"] = sum(parts.values()) + BASE_BYTES
    return parts


def available_bytes() -> int | None:
    """Memory available to a new allocation: ``MemAvailable`` of
    /proc/meminfo, else free physical pages (``os.sysconf``); None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(estimate: dict, available: int | None, hint: str = "") -> None:
    """Raise :class:`NotEnoughMemory` when ``estimate['total']`` exceeds ``available``."""
    if available is None or estimate["total"] <= available:
        return
    detail = ", ".join(f"{k} {gib(v)}" for k, v in estimate.items() if k != "total")
    raise NotEnoughMemory(f"this run needs about {gib(estimate['total'])} of memory ({detail}), "
                          f"but only {gib(available)} is available{hint}")


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"
