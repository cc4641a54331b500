"""The learned blur detectors: every trained network behind the same ``predict``.

A network runs on the photo resized to a square working size (320 px, the size they were trained for, as in the
papers); its blur map is brought back to the photo's full resolution by bilinear upsampling followed by a guided
filter (He et al. 2010) steered by the full-resolution grey image, which moves the map's edges onto the photo's edges
instead of leaving soft or blocky borders (:func:`defocus.nets.predict.predict_blur`, what training validation runs
too). The filter runs in horizontal stripes, so a 24-megapixel photo needs only a few full-size float32 planes.

One class runs them all: :class:`NetworkDetector`, built by :func:`defocus.load` from the network's
:class:`~defocus.pretrained.Pretrained` entry (weight file, sha256, working size, ...), which lives in the
``PRETRAINED`` list at the end of the network's module. Adding a trained network is one entry there.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ..data.core import as_bool
from ..errors import UsageError, WeightsError
from ..nets.calibration import check_calibration
from ..pretrained import Pretrained
from ..registry import Method

#: How a network can run: in torch, or exported to ONNX in onnxruntime (:mod:`defocus.nets.onnx`).
RUNTIMES = ("torch", "onnx")


class NetworkDetector(Method):
    """A trained network (any :data:`defocus.nets.models.MODELS` architecture) as a blur detector, or as a defocus-map
    estimator for an entry of task ``"dme"`` (DMENet).

    Parameters
    ----------
    pretrained : Pretrained
        The weight configuration (positional; :func:`defocus.load` passes the registry's entry).
    device : str
        ``"cpu"`` or ``"cuda"``.
    working_size : int, optional
        Side in px of the square the photo is resized to for the network (default: the entry's, the training size).
    weights : path, optional
        A model file from ``defocus train`` (``OUT/model.safetensors``) instead of the bundled one. It may hold any
        architecture (the file describes its own); what is checked is that the file is a readable model file whose
        tensors fit that architecture exactly, and its sha256 if ``sha256`` is given (a trained file records no
        digest of itself). The bundled file is always checked against the entry's sha256.
    sha256 : str, optional
        Required sha256 (full hex digest or a prefix) of ``weights``.
    refine : bool
        Guided-filter upsampling (True) or plain bilinear (False).
    radius_scale : float
        Guided-filter radius in working-size px (multiplied by the upsampling factor).
    eps : float
        Guided-filter regularisation.
    output : int
        The papers' single-output ablation (DeFusionNet_Ok, R²MRF_Ok): k ≥ 1 uses layer k's last-step side output
        instead of the fused map (networks with ``output_layers`` only: DeFusionNet, R²MRF; BR²Net, whose k = 1, 2
        are its L2H and H2L pathways; 0 = the fused map).
    runtime : {"torch", "onnx"}, optional
        What runs the network: torch, or onnxruntime on its ONNX export (:mod:`defocus.nets.onnx`; CUDA provider
        first for ``device="cuda"`` when present). Default: the entry's :attr:`~defocus.pretrained.Pretrained.runtime`
        where onnxruntime is installed, else torch. Pre- and post-processing are the same code for both.
    onnx : path, optional
        An ``.onnx`` file from ``defocus export`` to run (implies ``runtime="onnx"``); by default the network is
        exported once into the cache folder (``$DEFOCUS_CACHE``, else ``~/.cache/defocus``), keyed by the weights'
        sha256 and the versions that shape the graph.
    calibrate : bool or dict
        True: apply the entry's calibration (:attr:`~defocus.pretrained.Pretrained.calibration`, fitted on held-out
        synthetic scenes; docs/calibration.md) to the probability — nothing with ``weights=`` (the calibration
        belongs to the bundled file) or where the entry has none; False: the network's raw probability; a dict in
        one of the forms of :mod:`defocus.nets.calibration` (e.g. ``{"temperature": 0.5, "bias": 0.0}``): that map
        instead, with any weights.
    decisive : bool
        Blur detectors: apply the entry's decided-map temperature (:attr:`~defocus.pretrained.Pretrained.decisive`,
        fitted on held-out synthetic scenes to the MAE) instead of its calibration, where it has one (default);
        False gives the calibrated probability. Bundled weights only; ``calibrate=False`` or a dict overrides it.
    flip : bool
        Blur detectors: test-time augmentation, the mean of the maps of the photo and of its mirror image (twice
        the time; docs/benchmarks.md measures what it gains).
    """

    def __init__(self, pretrained: Pretrained, /, device: str = "cpu", working_size: int | None = None,
                 weights: str | None = None, sha256: str | None = None, refine: bool = True,
                 radius_scale: float = 2.0, eps: float = 1e-2, output: int = 0, runtime: str | None = None,
                 onnx: str | None = None, calibrate: bool = True, decisive: bool = True, flip: bool = False):
        super().__init__(device=device)
        from ..nets.modelfile import BUNDLED_DIR

        self.pretrained = pretrained
        self.name, self.task = pretrained.name, pretrained.task
        self.summary, self.paper = pretrained.summary, pretrained.paper
        if sha256 is not None:
            if weights is None:
                raise WeightsError(f"{self.name}: sha256= checks a file given with weights=; the bundled file is "
                                   "always checked")
            # str(): a digest of digits only arrives as a number from `--option sha256=...`
            sha256 = str(sha256).lower()
            if not re.fullmatch(r"[0-9a-f]{8,64}", sha256):
                raise WeightsError(f"{self.name}: sha256={sha256!r} is not a hex digest (8 to 64 hex digits)")
        self._path = Path(weights) if weights is not None else BUNDLED_DIR / pretrained.file
        self._digest = sha256 if weights is not None else pretrained.sha256
        self._model = None
        self.output = int(output)
        self.working_size = int(working_size if working_size is not None else pretrained.working_size)
        self.refine = bool(refine)
        self.radius_scale = float(radius_scale)
        self.eps = float(eps)
        self.flip = as_bool(flip, "flip")
        if isinstance(calibrate, dict):
            try:
                check_calibration(calibrate)
            except ValueError as exc:
                raise UsageError(f"{self.name}: calibrate={calibrate!r}: {exc}") from None
            self.calibrate, self.calibration, self.decisive = True, dict(calibrate), False
        else:
            self.calibrate = as_bool(calibrate, "calibrate")  # `--option calibrate=false` arrives as a string
            # fitted on the bundled network's outputs: meaningless for another weight file or another output
            bundled = weights is None and self.output == 0
            self.decisive = (as_bool(decisive, "decisive") and self.calibrate and bundled
                             and pretrained.decisive is not None)
            fitted = pretrained.decisive if self.decisive else pretrained.calibration
            self.calibration = fitted if self.calibrate and bundled else None
        self.runtime = choose_runtime(self.name, pretrained, runtime, onnx)
        if self.runtime == "onnx":
            try:
                self.network = self._onnx_network(onnx)
            except UsageError as exc:
                if runtime is not None or onnx is not None:
                    raise
                # onnx was only the default (no cache folder, no onnx package to export with): torch runs it
                warnings.warn(f"{self.name}: {exc}; running it in torch", stacklevel=2)
                self.runtime = "torch"
        if self.runtime == "torch":
            from ..nets.models import TorchNetwork

            self.network = TorchNetwork(self.model, device, channels_last=True)

    @property
    def model(self):
        """The torch network (conv/BN fused, channels-last), loaded on first use: the ONNX runtime needs it only
        to export."""
        if self._model is None:
            import torch

            from ..nets.layers import fuse_conv_bn
            from ..nets.modelfile import load_model

            model, self.metadata = load_model(self._path, sha256=self._digest, device=self.device)
            if self.output:
                layers = getattr(model, "output_layers", 0)
                if not 1 <= self.output <= layers:
                    raise ValueError(f"{self.name}: output={self.output} needs a network with per-layer outputs "
                                     f"1…{layers}")
                model.output = self.output
            self._model = fuse_conv_bn(model).to(memory_format=torch.channels_last)
        return self._model

    def _onnx_network(self, onnx: str | None):
        """The network exported to ONNX and run by onnxruntime: ``onnx`` (a file from ``defocus export``) or the
        export of these weights in the cache folder, made on first use."""
        from ..nets import onnx as ox
        from ..nets.weights import verify_sha256

        sha256 = verify_sha256(self._path, self._digest)
        if onnx is not None:
            network = ox.OnnxNetwork(onnx, self.device)
            exported_from = network.metadata.get("weights_sha256")
            if exported_from and exported_from != sha256:
                raise WeightsError(f"{onnx}: exported from other weights (sha256 {exported_from[:16]}…) than "
                                   f"{self.name}'s {self._path.name} ({sha256[:16]}…)")
            return network
        ox.require("onnxruntime")
        path = ox.cached(ox.cache_key(sha256, output=self.output), self.onnx_bytes)
        return ox.OnnxNetwork(path, self.device)

    def onnx_bytes(self) -> bytes:
        """This network (with its ``output`` choice) exported to ONNX, metadata included
        (:func:`defocus.nets.onnx.export_network`); what ``defocus export`` writes and the cache holds."""
        from ..nets.onnx import export_network
        from ..nets.weights import verify_sha256

        return export_network(self.model, self.pretrained, verify_sha256(self._path, self._digest))

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Blur map in [0, 1] (task dbd) or defocus map in σ px of the photo (task dme: the network runs at most at
        the working size, aspect kept, and σ is scaled back to the photo's px; see
        :func:`defocus.nets.predict.predict_defocus`)."""
        from ..nets.predict import predict_blur, predict_defocus

        if self.task == "dme":
            return predict_defocus(self.network, image, working_size=self.working_size, refine=self.refine,
                                   radius_scale=self.radius_scale, eps=self.eps)
        return predict_blur(self.network, image, working_size=self.working_size, refine=self.refine,
                            radius_scale=self.radius_scale, eps=self.eps,
                            calibration=self.calibration, flip=self.flip)


def choose_runtime(name: str, pretrained: Pretrained, runtime: str | None, onnx: str | None) -> str:
    """``"torch"`` or ``"onnx"``: the one asked for, else onnx where an ``onnx`` file is given or the entry prefers
    it (:attr:`Pretrained.runtime`, measured faster) and onnxruntime is installed, else torch."""
    from ..nets import onnx as ox

    if runtime is None:
        return "onnx" if onnx is not None else pretrained.default_runtime()
    if runtime not in RUNTIMES:
        raise UsageError(f"{name}: runtime={runtime!r} is not one of {', '.join(RUNTIMES)}")
    if runtime == "torch" and onnx is not None:
        raise UsageError(f"{name}: onnx={onnx} runs in onnxruntime; it cannot go with runtime=torch")
    if runtime == "onnx":
        ox.require("onnxruntime")
    return runtime
