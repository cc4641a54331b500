"""Edge-aware filters shared by several methods.

:mod:`defocus.filters.guided` — He et al.'s guided filter and guided upsampling of a low-resolution map.

:mod:`defocus.filters.domain_transform` — Gastal & Oliveira's recursive domain-transform filter, with an optional
per-pixel penalty that blocks propagation across marked edges, and normalised-convolution interpolation of sparse
values.
"""

from .domain_transform import interpolate, recursive_filter
from .guided import guided_filter, guided_upsample

__all__ = ["recursive_filter", "interpolate", "guided_filter", "guided_upsample"]
