"""Image operations shared by several methods (NumPy/OpenCV only, no torch).

:mod:`defocus.filters.guided` — He et al.'s guided filter and guided upsampling of a low-resolution map.

:mod:`defocus.filters.domain_transform` — Gastal & Oliveira's recursive domain-transform filter, with an optional
per-pixel penalty that blocks propagation across marked edges, normalised-convolution interpolation of sparse
values, and the propagation of sparse edge values over a photo that Karaali & Jung's methods use.

:mod:`defocus.filters.matting` — Levin et al.'s closed-form matting Laplacian, matrix-free or assembled.

:mod:`defocus.filters.color` — the BT.601 grey conversion.

:mod:`defocus.filters.normalize` — per-photo min-max normalisation and the sharpness → blur map conversion.

:mod:`defocus.filters.pcnn` — the first firing times of a simplified pulse-coupled neural network.
"""

from .color import gray
from .domain_transform import interpolate, propagate, recursive_filter
from .guided import guided_filter, guided_upsample
from .matting import MattingLaplacian
from .normalize import minmax, sharpness_to_blur
from .pcnn import pcnn_firing_times

__all__ = ["recursive_filter", "interpolate", "propagate", "guided_filter", "guided_upsample", "MattingLaplacian",
           "gray", "minmax", "sharpness_to_blur", "pcnn_firing_times"]
