"""Will a training run fit in memory? An estimate made before anything big
is allocated, and the memory the machine has available.

The estimate counts, in the training dtype: the parameters, their gradients
and the optimizer's state (Adam two arrays a parameter, Momentum, AdaGrad
and RMSprop one, SGD none); one step's activations (each weight matrix
``(D, M)`` gives ``N * T * M`` outputs, cached for backward and once more
in backward: three copies); and the output layer's logits, their softmax
and gradient (three ``N * T * V`` arrays); and the float64 temporaries the
initialisation draws the largest weight in. The rows of a step are the
larger of training's and evaluation's (``eval_rows``: ``eval_perplexity``
runs 10 x 35 rows). Where a helper process computes half of each batch
(``halves``, :func:`may_split`) it counts the helper too: its replica's
parameters and gradients, both again in the shared segment, the gradient
temporary that adds the halves up, and the helper's interpreter. A
script adds what its models need beyond that (``extra``: attention's
weights, the answers of an evaluation). The memory available is the
smallest of the machine's (``MemAvailable``), the process's address-space
limit (``ulimit -v``) and its control group's limit, less what each
already holds (:func:`available_bytes`).
"""

import math
import os

try:
    import resource
except ImportError:  # (not POSIX)
    resource = None

# Bytes of the interpreter, NumPy and BLAS before any array (measured about
# 60-70 MiB for the demo; rounded up).
BASE_BYTES = 100 * 2**20
# How much the address space grows after the check beyond what the
# estimate counts (see credit): OpenBLAS's buffers (32 MiB, two of them),
# and for each thread rnnlab starts its stack (RLIMIT_STACK's size) and
# glibc's malloc arena (64 MiB reserved).
AS_GROWTH_BYTES = 64 * 2**20
AS_ARENA_BYTES = 64 * 2**20
# Reading a text file takes up to this many bytes of memory per byte of it (a
# Python object per token until the ids are made), measured on files of 4-20
# MB: English 22-23x at either level, words all distinct 29x, CJK characters 35x.
TEXT_BYTES_PER_BYTE = 40
OPTIMIZER_COPIES = {"SGD": 0, "Momentum": 1, "AdaGrad": 1, "RMSprop": 1, "Adam": 2}
GATES = {"simple": 1, "lstm": 4, "gru": 3, "better": 4}


# The limits of memory_limits, by name.
MACHINE = "the machine's available memory"
ADDRESS_SPACE = "the process's address-space limit (ulimit -v)"
CGROUP = "the memory limit of the process's control group (cgroup)"


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
                            itemsize: int = 4, *, eval_rows: int = 0, halves: bool = False,
                            extra: dict | None = None) -> dict:
    """``{'parameters', 'optimizer', 'activations', 'logits', 'initialisation'
    [, 'helper'] [, extra's names], 'total'}`` in bytes.

    ``eval_rows``: the rows of an evaluation step, when it has more than a
    training step (``batch_size * time_size``); ``halves``: a helper process
    computes half of each batch (:func:`may_split`); ``extra``: further
    named parts, in bytes.
    """
    n_params = sum(math.prod(s) for s in shapes)
    rows = max(batch_size * time_size, eval_rows)
    matrices = [s for s in shapes if len(s) == 2]
    vocab = shapes[-1][0]
    # The output matrix (H, V), just before the output bias (V,), gives the
    # logits, counted as such; with weights tied to the embedding there is none.
    if len(shapes) > 1 and len(shapes[-2]) == 2 and shapes[-2][1] == vocab:
        matrices = matrices[:-1] or matrices
    parts = {
        "parameters": 2 * n_params * itemsize,  # and their gradients
        "optimizer": OPTIMIZER_COPIES.get(optimizer, 2) * n_params * itemsize,
        "activations": 3 * rows * sum(s[1] for s in matrices) * itemsize,
        "logits": 3 * rows * vocab * itemsize,
        # The initialisation draws each array in float64 and casts it: two
        # float64 temporaries (the draw and its scaled copy) of the largest.
        "initialisation": 2 * 8 * max(math.prod(s) for s in shapes),
    }
    if halves:
        # Here: the parameters and gradients in the shared segment, and the
        # temporary that adds the halves' gradients; in the helper process: its
        # replica's parameters and gradients, and its Python.
        parts["helper"] = 3 * n_params * itemsize
        parts["helper process"] = 2 * n_params * itemsize + BASE_BYTES
    parts.update(extra or {})
    parts["total"] = sum(parts.values()) + BASE_BYTES
    return parts


def may_split(batch_size: int, recurrent_shape: tuple, itemsize: int = 4,
              replicable: bool = True) -> bool:
    """Whether batches of ``batch_size`` rows for a model whose largest
    recurrent weight has ``recurrent_shape`` would be computed by halves,
    one in a helper process (the sizes' part of
    :func:`common.data_parallel.splits`, for a model not built yet)."""
    from common import data_parallel  # (only here: this module stays light)

    if not replicable or not data_parallel._helpers_here():
        return False
    size = math.prod(recurrent_shape)
    return data_parallel.halves_repay(batch_size, size, size * itemsize)


def available_bytes(estimate: dict | None = None) -> int | None:
    """Memory available to a new allocation: the smallest of what
    :func:`memory_limits` finds; None if it finds nothing. With the
    ``estimate`` of a run, what each limit leaves for that estimate's
    ``total`` (:func:`rooms`), the smallest."""
    limits = rooms(estimate) if estimate is not None else memory_limits()
    return min(limits.values()) if limits else None


def rooms(estimate: dict) -> dict:
    """What each of :func:`memory_limits` leaves for an ``estimate``'s total:
    the limit's bytes left, plus what of the total it does not bind
    (:func:`credit`)."""
    return {name: left + credit(name, estimate) for name, left in memory_limits().items()}


def credit(limit: str, estimate: dict) -> int:
    """What of ``estimate``'s total the limit named ``limit`` does not bind.

    The machine's memory holds all of it. The control group's usage counts
    the interpreter this process runs already (``BASE_BYTES`` of the
    total). The address-space limit is per process, so the helper
    process's part is not in this one's; and though the mappings counted
    already hold the interpreter, they grow after the check by far more
    than its resident pages (OpenBLAS maps 32 MiB buffers at its first
    products; each thread its stack and a malloc arena of 64 MiB): that
    growth is counted against ``BASE_BYTES`` (a credit below zero: the
    limit binds more than the total).
    """
    if limit == ADDRESS_SPACE:
        from common.parallel import num_threads  # (only here: this module stays light)

        # The pool's threads (the calling thread is one of the num_threads()),
        # each with a stack of RLIMIT_STACK's size, as glibc gives it.
        stack = _stack_bytes()
        growth = AS_GROWTH_BYTES + (num_threads() - 1) * (AS_ARENA_BYTES + stack)
        return BASE_BYTES - growth + estimate.get("helper process", 0)
    if limit == CGROUP:
        return BASE_BYTES
    return 0


def memory_limits() -> dict:
    """What bounds a new allocation, by what it is, in bytes left: the
    machine's ``MemAvailable`` (of /proc/meminfo; else its free physical
    pages), the process's address-space limit (``ulimit -v``) less its
    mappings, and its control group's memory limit less its usage (cgroup
    v2 or v1). The limits that are not set, or cannot be read, are left out.
    """
    limits = {}
    machine = _meminfo("MemAvailable")
    if machine is None:
        try:
            machine = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            machine = None
    if machine is not None:
        limits[MACHINE] = machine
    address_space = _address_space_left()
    if address_space is not None:
        limits[ADDRESS_SPACE] = address_space
    group = _cgroup_left()
    if group is not None:
        limits[CGROUP] = group
    return limits


def _meminfo(key, path="/proc/meminfo"):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _stack_bytes() -> int:
    """A new thread's stack: RLIMIT_STACK's soft limit (8 MiB when unlimited
    or unknown), as glibc sizes it."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    except (AttributeError, OSError, ValueError):
        return 8 * 2**20
    return 8 * 2**20 if soft == resource.RLIM_INFINITY or soft <= 0 else soft


def _address_space_left():
    if resource is None:
        return None
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    used = _meminfo("VmSize", "/proc/self/status") or 0
    return max(0, soft - used)


def _cgroup_left(root="/sys/fs/cgroup", membership="/proc/self/cgroup"):
    """The cgroup's limit less its usage, or None (no limit, or unreadable)."""
    try:
        with open(membership) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: memory.max, memory.current
            folder = os.path.join(root, path.lstrip("/"))
            limit = _read_number(os.path.join(folder, "memory.max"))
            usage = _read_number(os.path.join(folder, "memory.current"))
            cache = _stat(os.path.join(folder, "memory.stat"), "inactive_file")
        elif "memory" in controllers.split(","):  # v1
            folder = os.path.join(root, "memory", path.lstrip("/"))
            if not os.path.isdir(folder):  # (a container sees its own group at the root)
                folder = os.path.join(root, "memory")
            limit = _read_number(os.path.join(folder, "memory.limit_in_bytes"))
            usage = _read_number(os.path.join(folder, "memory.usage_in_bytes"))
            cache = _stat(os.path.join(folder, "memory.stat"), "total_inactive_file")
        else:
            continue
        # "max", or v1's "no limit" (a number near 2^63): not a limit.
        if limit is not None and usage is not None and limit < 2**62:
            # Inactive file cache is reclaimed before anything is killed (as
            # MemAvailable counts it): not in use.
            return max(0, limit - max(0, usage - cache))
    return None


def _stat(path, key) -> int:
    """``key``'s figure in a cgroup's memory.stat, or 0."""
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _read_number(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def check_memory(estimate: dict, available: int | None, hint: str = "") -> None:
    """Raise :class:`NotEnoughMemory` when ``estimate['total']`` exceeds ``available``."""
    if available is None or estimate["total"] <= available:
        return
    detail = ", ".join(f"{k} {gib(v)}" for k, v in estimate.items() if k != "total")
    # A bound other than the machine's memory is named, with what it binds.
    room = rooms(estimate)
    bound = min(room, key=room.get) if room else MACHINE
    if bound == MACHINE or abs(room[bound] - available) > 2**20:  # (a caller's own figure)
        raise NotEnoughMemory(f"this run needs about {gib(estimate['total'])} of memory "
                              f"({detail}), but only {gib(available)} is available{hint}")
    given = credit(bound, estimate)
    need, left = estimate["total"] - given, available - given
    short = -(-(need - left) // 2**20)  # MiB, rounded up
    raise NotEnoughMemory(f"this run needs about {gib(need)} under {bound} ({detail}, "
                          f"the interpreter {gib(BASE_BYTES)}, {_credited(bound, given, estimate)}"
                          f"), but only {gib(left)} is left under it, {short} MiB short{hint}")


def reading_problem(flag: str, path: str, bytes_per_byte: int, available: int | None,
                    why: str, part: str) -> str | None:
    """Why reading the file ``path`` (given as ``flag``) would not fit in
    ``available`` bytes, at up to ``bytes_per_byte`` of memory for each
    byte of the file, or None: checked before reading it. ``why`` says why
    it takes that much; ``part`` is the advice on a part that fits, with
    ``{fits}`` for its size in bytes (replaced, not ``str.format``-ed: the
    advice holds the file's name, which may hold braces)."""
    size = os.path.getsize(path)
    need = {"reading": bytes_per_byte * size}
    need["total"] = need["reading"]
    fits = max((available or 0) // bytes_per_byte, 1)
    try:
        check_memory(need, available, hint=f" to read {flag} {path} ({gib(size)}: {why}); "
                                           f"{part.replace('{fits}', str(fits))}, or pass "
                                           f"--ignore-memory-check to try anyway")
    except NotEnoughMemory as exc:
        return str(exc)
    return None


def text_reading_error(flag: str, path: str) -> str:
    """What to say when reading the text file ``path`` (given as ``flag``)
    ran out of memory, past the checks or with none."""
    return (f"not enough memory to read {flag} {path} ({gib(os.path.getsize(path))}; reading "
            f"takes up to {TEXT_BYTES_PER_BYTE} times that); train on a part of the file (cut "
            f"it: --corpus-size still reads all of it)")


def _credited(bound: str, given: int, estimate: dict) -> str:
    """What :func:`credit` gave ``estimate`` under ``bound`` (``given``), in words."""
    if given < 0:
        return (f"and {gib(-given)} more its mappings grow by: thread stacks, malloc arenas, "
                f"OpenBLAS's buffers")
    if bound == CGROUP:
        what = "the interpreter, already in its usage"
    elif "helper process" in estimate:
        what = "the helper's own process, the interpreter already mapped"
    else:
        what = "the interpreter already mapped"
    return f"less {gib(given)} that limit does not bind: {what}"


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"
