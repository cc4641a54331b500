"""What a bundled (or user-trained) weight file is: the configuration kept beside each network's architecture.

Each network module (``defocus/nets/<arch>.py``) lists its weight files as :class:`Pretrained` entries in a
module-level ``PRETRAINED`` list, the way timm keeps ``default_cfgs`` beside the model. This module imports neither
torch nor any network, so the registry can describe every learned method without building one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pretrained:
    """One set of trained weights for one architecture.

    Attributes
    ----------
    name : str
        Registry name, ``<family>`` or ``<family>.<tag>`` for a weight variant (e.g. ``dffnet.distilled``).
    arch : str
        Architecture key of :data:`defocus.nets.models.MODELS`; ``arch_kwargs`` are its options.
    file, sha256 : str
        Weight file in ``defocus/weights`` and its sha256 (checked on every load).
    task : {"dbd", "dme", "patch"}
        What the network's output is: a blur map, a defocus map, or per-patch class scores used inside a method.
    working_size : int or None
        Side in px of the square the photo is resized to; None for fully convolutional use at any size.
    normalization : str
        Input expected by the network: ``"rgb01"`` = RGB float in [0, 1] (any mean/std is applied inside the model).
    output : str
        What the output means, in the project's conventions.
    recipe : str
        ``defocus train --config`` recipe that produced the file ("" if none).
    summary, paper, licence : str
        One line for ``defocus methods``; citation of the method; licence of the weights.
    aliases : tuple of str
        Other names that resolve to this entry (names users typed before).
    runtime : {"torch", "onnx"}
        What runs the network by default: ``"onnx"`` where onnxruntime was measured faster for it
        (``benchmarks/onnx_runtime.py``) and is installed (torch otherwise), else ``"torch"``.
    calibration : dict or None
        Monotone map of the blur probability fitted on held-out synthetic scenes (``benchmarks/calibrate.py``;
        forms in :mod:`defocus.nets.calibration`), applied by default (``calibrate=False`` turns it off); None =
        the network's probability as it is.
    decisive : dict or None
        A temperature map (``{"temperature": T, "bias": b}``, T < 1) fitted on held-out synthetic scenes to minimise
        the MAE of the final map against hard labels (``benchmarks/calibrate.py``, column ``decisive``): it turns the
        probability into a decided blur map, which is what DBD's MAE scores. Where given it is applied by default
        instead of ``calibration`` (``decisive=False`` gives the calibrated probability); None = no such map.
    """

    name: str
    arch: str
    file: str
    sha256: str
    task: str = "dbd"
    arch_kwargs: dict = field(default_factory=dict)
    working_size: int | None = 320
    normalization: str = "rgb01"
    output: str = "blur probability in [0, 1], 1 = out of focus"
    recipe: str = ""
    summary: str = ""
    paper: str = ""
    licence: str = "MIT (trained here on synthetic data)"
    aliases: tuple[str, ...] = ()
    runtime: str = "torch"
    calibration: dict | None = None
    decisive: dict | None = None

    def default_runtime(self) -> str:
        """The runtime used when none is asked for: ``"onnx"`` where the entry prefers it and onnxruntime is
        installed (looked up without importing it, so listing methods stays light), else ``"torch"``."""
        import importlib.util

        return "onnx" if self.runtime == "onnx" and importlib.util.find_spec("onnxruntime") else "torch"

    @property
    def model(self) -> dict:
        """The ``arch`` dict of :func:`defocus.nets.models.build_model` (what a model file's metadata holds)."""
        return {"arch": self.arch, **self.arch_kwargs}
