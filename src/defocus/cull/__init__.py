"""Focus culling: which photos of a folder are sharp, which have a sharp subject against a soft background, and
which missed focus — judged from a blur map, at a fixed working size, so the verdict does not depend on the
photo's resolution.

>>> import numpy as np
>>> from defocus.cull import VERDICTS
>>> VERDICTS
('sharp', 'shallow-dof', 'missed-focus')

:func:`assess` judges one RGB array; :func:`cull` judges files and folders and writes the reports
(``defocus cull``). Details, calibration and accuracy: docs/cull.md.
"""

from .batch import CullResult, cull
from .core import VERDICTS, Assessment, assess, verdict_fields

__all__ = ["Assessment", "CullResult", "VERDICTS", "assess", "cull", "verdict_fields"]
