"""Edge-aware filters shared by several methods.

:mod:`defocus.filters.domain_transform` — Gastal & Oliveira's recursive domain-transform filter, with an optional
per-pixel penalty that blocks propagation across marked edges, and normalised-convolution interpolation of sparse
values.
"""

from .domain_transform import interpolate, recursive_filter

__all__ = ["recursive_filter", "interpolate"]
