"""One registry for every method, classic or learned.

A method is a class with the attributes of :class:`Method` and a ``predict(image)``. It is registered by one line in
:data:`METHODS` (``name -> "module:Class"``); modules are imported only when the method is used, so listing methods
or running a classic one never imports torch.

>>> import defocus
>>> "gradient-energy" in defocus.available()
True
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from .errors import InputArrayError, UnknownMethodError

# name -> "module:Class". Add one line per method.
METHODS: dict[str, str] = {
    "light-dffnet": "defocus.methods.networks:LightDFFNetDetector",
    "dffnet": "defocus.methods.networks:DFFNetDetector",
    "d-dffnet": "defocus.methods.networks:DDFFNetDetector",
    "r2mrf": "defocus.methods.networks:R2MRFDetector",
    "defusionnet": "defocus.methods.networks:DeFusionNetDetector",
    "gradient-energy": "defocus.methods.gradient_energy:GradientEnergy",
    "lbp": "defocus.methods.lbp:LBP",
    "svd": "defocus.methods.svd:SVD",
    "s3": "defocus.methods.s3:S3",
    "fish": "defocus.methods.fish:FISH",
    "hifst": "defocus.methods.hifst:HiFST",
    "zhuo-sim": "defocus.methods.zhuo_sim:ZhuoSim",
    "karaali-jung-2018": "defocus.methods.karaali_jung_2018:KaraaliJung2018",
    "karaali-2022": "defocus.methods.karaali_2022:Karaali2022",
    "karaali-2022-dbd": "defocus.methods.karaali_2022_dbd:Karaali2022DBD",
}

#: The method ``defocus detect`` uses when no ``-m`` is given.
DEFAULT_DETECTOR = "light-dffnet"
#: The method ``defocus estimate`` uses when no ``-m`` is given.
DEFAULT_ESTIMATOR: str | None = "karaali-jung-2018"

TASKS = ("dbd", "dme")


class Method:
    """Interface every registered method follows.

    Attributes
    ----------
    name : str
        Registry name.
    task : {"dbd", "dme"}
        ``"dbd"``: :meth:`predict` returns a blur map, float32 H×W in [0, 1], 1 = out of focus.
        ``"dme"``: :meth:`predict` returns a defocus map, float32 H×W, Gaussian σ in pixels (≥ 0).
    summary : str
        One line for ``defocus methods``.
    paper : str
        Citation of the method's source.
    """

    name: str = ""
    task: str = "dbd"
    summary: str = ""
    paper: str = ""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        predict = cls.__dict__.get("predict")
        if predict is not None and not getattr(predict, "_checks_input", False):
            cls.predict = _checked_predict(predict)

    def __init__(self, device: str = "cpu", **options: Any) -> None:
        self.device = device
        self.options = options

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Map for one image.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3), float32 RGB in [0, 1]
            As returned by :func:`defocus.io.read_image`.

        Returns
        -------
        ndarray of shape (H, W), float32
            Blur map in [0, 1] (1 = out of focus) for ``task == "dbd"``; Gaussian σ in pixels for ``"dme"``.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, task={self.task!r}, device={self.device!r})"


def as_photo(image: Any) -> np.ndarray:
    """The array every method's ``predict`` works on: float32 RGB H×W×3, finite, in [0, 1].

    A grey H×W image is repeated into three channels; an alpha channel is dropped; non-finite values are replaced
    (NaN and -inf by 0, +inf by 1) with a warning, so no kernel ever sees one.
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputArrayError(f"expected an H×W×3 RGB image, got an array of shape {arr.shape}")
    arr = np.asarray(arr[..., :3], dtype=np.float32)
    lo, hi = float(arr.min()), float(arr.max())  # NaN propagates into both
    if 0.0 <= lo and hi <= 1.0 and arr.flags.c_contiguous:
        return arr  # the common case: no copy
    if not (np.isfinite(lo) and np.isfinite(hi)):
        import warnings

        warnings.warn(f"{np.count_nonzero(~np.isfinite(arr))} non-finite pixel value(s) replaced before prediction",
                      stacklevel=3)
        arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
    return np.ascontiguousarray(np.clip(arr, 0.0, 1.0))


def _checked_predict(predict):
    import functools

    @functools.wraps(predict)
    def checked(self, image, *args, **kw):
        return predict(self, as_photo(image), *args, **kw)

    checked._checks_input = True
    return checked


def _resolve(name: str) -> type[Method]:
    try:
        target = METHODS[name]
    except KeyError:
        known = ", ".join(sorted(METHODS))
        raise UnknownMethodError(f"unknown method {name!r}; available: {known}") from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    cls.name = name
    return cls


def available(task: str | None = None) -> list[str]:
    """Names of the registered methods, optionally only those of one task (``"dbd"`` or ``"dme"``)."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")
    names = sorted(METHODS)
    if task is None:
        return names
    return [n for n in names if _resolve(n).task == task]


def describe(name: str) -> type[Method]:
    """The class registered under ``name`` (its ``task``, ``summary`` and ``paper`` attributes), without building it."""
    return _resolve(name)


def load(name: str, device: str = "cpu", **options: Any) -> Method:
    """Build the method registered under ``name``.

    Parameters
    ----------
    name : str
        A name from :func:`available`.
    device : str
        ``"cpu"`` or ``"cuda"``; classic methods ignore it.
    **options
        Method-specific keyword options (see each method's docstring).
    """
    return _resolve(name)(device=device, **options)
