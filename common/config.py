"""The book's GPU switch, kept so that its scripts run unchanged.

    from common import config
    config.GPU = True          # before any other rnnlab import

selects the CuPy backend, exactly as ``RNNLAB_GPU=1`` in the environment
does. The backend is chosen once, when :mod:`common.backend` is first
imported (by any layer, model or optimizer); from then on ``config.GPU``
says which one was chosen, and setting it to the other value raises a
``RuntimeError`` instead of letting NumPy and CuPy arrays mix.
"""

import sys
import types

#: True: use CuPy (read when common.backend is first imported).
GPU = False


class _Config(types.ModuleType):
    """This module, refusing a ``GPU`` that contradicts the backend already chosen."""

    def __setattr__(self, name, value):
        backend = sys.modules.get("common.backend")
        chosen = getattr(backend, "GPU", None)
        if name == "GPU" and chosen is not None and bool(value) != chosen:
            raise RuntimeError(
                f"config.GPU = {value!r} comes too late: rnnlab already chose the "
                f"{'CuPy' if chosen else 'NumPy'} backend when common.backend was first "
                "imported, and arrays of the two must not mix. Set config.GPU before any "
                "other rnnlab import (right after `from common import config`), or set "
                "RNNLAB_GPU=1 in the environment."
            )
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Config
