"""defocus: defocus blur detection (DBD) and defocus map estimation (DME).

Conventions used everywhere in the package:

* **Blur map** – float32, H×W of the input, values in [0, 1], **1 = out of focus**.
* **Defocus map** – float32, H×W, **Gaussian σ in pixels**; :mod:`defocus.units` converts to disk (CoC) radius.

>>> import defocus
>>> method = defocus.load("gradient-energy")
>>> method.task
'dbd'
"""

from .errors import DefocusError
from .io import read_image
from .registry import DEFAULT_DETECTOR, available, describe, load

__version__ = "0.1.0"
__all__ = ["DEFAULT_DETECTOR", "DefocusError", "available", "describe", "load", "read_image", "__version__"]
