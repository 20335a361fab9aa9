"""The book's ``common/np.py``, kept so that the line that opens some of its
scripts, ``from common.np import *``, runs unchanged.

It gives ``np``, the array module rnnlab chose (NumPy, or CuPy with
``RNNLAB_GPU=1`` or ``config.GPU = True`` set before the first rnnlab
import, see :mod:`common.backend`), and ``GPU``, which says which. rnnlab's
own code writes ``from common.backend import xp`` for the same module.
"""

from common.backend import GPU
from common.backend import xp as np

__all__ = ["GPU", "np"]
