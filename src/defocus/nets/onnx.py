"""ONNX export of the bundled networks and the onnxruntime runtime that runs them.

What is exported is the network alone — what :class:`defocus.methods.networks.NetworkDetector` feeds its network:
an RGB float32 tensor ``(N, 3, H, W)`` in [0, 1] at the working size (the ImageNet mean/std of the backbone is
applied inside the graph) → the blur probability ``(N, 1, H, W)`` in [0, 1], 1 = out of focus (the network's
sigmoid is part of the graph). Resizing to the working size, the guided-filter upsampling and every other step of
:func:`defocus.nets.predict.predict_blur` stay in Python and are the same for both runtimes: a *runtime* is any
callable from that input array to that probability array (:class:`defocus.nets.models.TorchNetwork`,
:class:`OnnxNetwork`).

Batch, height and width are dynamic (any size of at least 64 px; the detector feeds its square working size). The
model's ``metadata_props`` say what it is (:func:`network_metadata`): name, arch, working size, input and its
normalisation, output meaning, the sha256 of the weight file it was exported from, and the defocus, torch and opset
versions.

B-Net and E-Net (inside ``karaali-2022``) export too: ``benet`` / ``enet`` as the patch classifiers
``(N, 3, 41, 41) → logits``, and ``karaali-2022`` as their dense evaluation of one block of the padded image
(:class:`defocus.nets.benet_dense.DenseBENet`).

``defocus detect --runtime onnx`` exports a network once into the cache folder (:func:`defocus.paths.cache_dir`),
keyed by the weights' sha256 and the versions that shape the graph, and runs the file from there; nothing is
downloaded. ``onnx`` and ``onnxruntime`` are the optional extra ``defocus[onnx]``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import UsageError, WeightsError
from ..pretrained import Pretrained

#: ONNX opset of the exported graphs.
OPSET = 17
#: Version of what :func:`export_bytes` writes; part of the cache key, so a change here re-exports.
EXPORT_FORMAT = 1
#: Side (px) of the example input the graph is traced with where the network has no working size.
TRACE_SIZE = 320
INSTALL_HINT = "pip install 'defocus[onnx]'"


def require(module: str = "onnxruntime"):
    """Import ``onnx`` or ``onnxruntime``, or raise a one-line :class:`UsageError` saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"the ONNX runtime needs the package '{module}', which is not installed: "
                         f"{INSTALL_HINT}") from None


# ----------------------------------------------------------------------------------------------------------------------
# Export


def network_metadata(pretrained: Pretrained, arch: dict, weights_sha256: str, working_size: int | None) -> dict:
    """The ``metadata_props`` of an exported network (strings; ``arch`` as JSON)."""
    import torch

    from .. import __version__

    return {
        "name": pretrained.name,
        "arch": json.dumps(arch, sort_keys=True),
        "task": pretrained.task,
        "working_size": "" if working_size is None else str(int(working_size)),
        "input": "RGB float32 (N, 3, H, W) in [0, 1]; H, W dynamic",
        "normalization": pretrained.normalization,
        # what the input must be normalised with before it is fed: nothing (the backbone's mean/std is in the graph)
        "mean": "0.0,0.0,0.0",
        "std": "1.0,1.0,1.0",
        "output": pretrained.output,
        "weights_sha256": weights_sha256,
        "defocus_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "opset": str(OPSET),
        "export_format": str(EXPORT_FORMAT),
    }


def export_bytes(module, example: tuple, *, input_names: list[str], output_names: list[str],
                 dynamic_axes: dict, metadata: dict, doc: str = "") -> bytes:
    """The ONNX encoding of ``module`` traced on ``example``, with ``metadata`` as its ``metadata_props``.

    Uses torch's TorchScript-based exporter (``dynamo=False``; it needs no onnxscript). Its deprecation notice and
    the tracer's notes on shape comparisons are silenced: the networks take the size-independent branch while
    traced (:func:`defocus.nets.layers.resize`), and the tests run every export at two sizes.
    """
    import torch

    onnx = require("onnx")
    from .. import __version__

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), example, buffer, dynamo=False, opset_version=OPSET,
                          input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
                          do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    model.producer_name, model.producer_version = "defocus", __version__
    model.doc_string = doc
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _probability_module(model):
    import torch
    from torch import nn

    class Probability(nn.Module):
        """The network followed by its sigmoid: what the detector's runtimes return."""

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.net(x))

    return Probability(model)


def export_network(model, pretrained: Pretrained, weights_sha256: str, working_size: int | None = None) -> bytes:
    """ONNX bytes of a blur-detection network (a loaded ``nn.Module`` in eval mode, conv/BN fused or not):
    ``image`` (N, 3, H, W) in [0, 1] → ``blur`` (N, 1, H, W) probability."""
    import torch

    working_size = working_size or pretrained.working_size
    size = int(working_size or TRACE_SIZE)
    axes = {0: "batch", 2: "height", 3: "width"}
    return export_bytes(_probability_module(model).cpu(), (torch.rand(1, 3, size, size),),
                        input_names=["image"], output_names=["blur"], dynamic_axes={"image": axes, "blur": axes},
                        metadata=network_metadata(pretrained, model.arch, weights_sha256, working_size),
                        doc=pretrained.summary)


def export_patch_classifier(model, pretrained: Pretrained, weights_sha256: str) -> bytes:
    """ONNX bytes of B-Net or E-Net on patches: ``patches`` (N, 3, 41, 41) in [0, 1] → ``logits`` (N, classes)."""
    import torch

    from .benet import PATCH_SIZES

    side = PATCH_SIZES[0]
    meta = {**network_metadata(pretrained, model.arch, weights_sha256, None),
            "input": f"RGB float32 patches (N, 3, {side}, {side}) in [0, 1] centred on edge pixels; N dynamic"}
    return export_bytes(model.cpu(), (torch.rand(2, 3, side, side),), input_names=["patches"],
                        output_names=["logits"], dynamic_axes={"patches": {0: "n"}, "logits": {0: "n"}},
                        metadata=meta, doc=pretrained.summary)


def export_dense(bnet, enet, bnet_entry: Pretrained, sha256: str) -> bytes:
    """ONNX bytes of the dense B-Net + E-Net evaluation of one block (:class:`defocus.nets.benet_dense.DenseBENet`):
    ``block`` (1, 3, h, w) of the padded image in [0, 1], ``ys``, ``xs`` (N,) int64 top-left corners of the 41×41
    windows to score → ``bnet_logits`` (N, 23) and ``enet_logits`` (N, 2)."""
    import torch

    from .benet_dense import FIELD, DenseBENet

    dense = DenseBENet(bnet, enet)
    size = 96
    ys = torch.tensor([0, 3, size - FIELD])
    xs = torch.tensor([0, 7, size - FIELD])
    meta = {**network_metadata(bnet_entry, {"bnet": bnet.arch, "enet": enet.arch}, sha256, None),
            "name": "karaali-2022", "task": "patch",
            "input": f"block: RGB float32 (1, 3, h, w) in [0, 1], part of the 20-px reflect-padded photo, "
                     f"h, w >= {FIELD}; ys, xs: int64 (N,) top-left corners of the {FIELD}x{FIELD} windows to score",
            "output": "bnet_logits (N, 23) over the disk radii 0.5 … 6.0 px; enet_logits (N, 2) (pattern, depth)"}
    axes = {"block": {2: "height", 3: "width"}, "ys": {0: "n"}, "xs": {0: "n"},
            "bnet_logits": {0: "n"}, "enet_logits": {0: "n"}}
    return export_bytes(dense, (torch.rand(1, 3, size, size), ys, xs), input_names=["block", "ys", "xs"],
                        output_names=["bnet_logits", "enet_logits"], dynamic_axes=axes, metadata=meta,
                        doc="B-Net and E-Net of Karaali, Harte & Jung (TIP 2022), dense over one image block")


def export_file(data: bytes, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write ONNX bytes atomically (never over an existing file unless ``force``)."""
    from ..io import atomic_write

    return atomic_write(path, lambda f: f.write(data), force=force)


# ----------------------------------------------------------------------------------------------------------------------
# Cache


def cache_key(weights_sha256: str, **graph_options) -> str:
    """The name of a network's cached export: the weights' digest and whatever else shapes the graph (defocus,
    torch and onnx versions, opset, export format, options such as ``output``)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from .. import __version__

    try:
        onnx_version = version("onnx")  # read, not imported: a cache hit needs no onnx
    except PackageNotFoundError:
        onnx_version = None
    what = json.dumps({"defocus": __version__, "torch": torch.__version__, "onnx": onnx_version, "opset": OPSET,
                       "format": EXPORT_FORMAT, **graph_options}, sort_keys=True)
    return f"{weights_sha256[:16]}-{hashlib.sha256(what.encode()).hexdigest()[:12]}.onnx"


def cached(key: str, make) -> Path:
    """The cache file ``key``, written (atomically, by ``make() -> bytes``) if it is not there yet."""
    from ..paths import cache_dir

    folder = cache_dir() / "onnx"
    path = folder / key
    if not path.is_file():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"ONNX cache {folder}: cannot create it ({exc.strerror or exc}); set DEFOCUS_CACHE "
                             "or pass --option onnx=FILE") from None
        data = make()
        try:  # two runs may export at once: both write the same bytes, and each rename is atomic
            export_file(data, path, force=True)
        except OSError as exc:
            raise UsageError(f"ONNX cache {folder}: cannot write there ({exc.strerror or exc}); set "
                             "DEFOCUS_CACHE or pass --option onnx=FILE") from None
    return path


# ----------------------------------------------------------------------------------------------------------------------
# Runtime


def providers(device: str = "cpu") -> list[str]:
    """onnxruntime execution providers for ``device``: CUDA first for ``cuda``/``cuda:N`` when onnxruntime has it,
    always the CPU provider."""
    ort = require("onnxruntime")
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        index = int(device.split(":")[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session(model: str | os.PathLike | bytes, device: str = "cpu", threads: int | None = None):
    """An onnxruntime ``InferenceSession`` for a model file (or its bytes). ``threads``: intra-op threads (default:
    torch's thread count, so both runtimes use the same number of cores)."""
    ort = require("onnxruntime")
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    # No spin-waiting between calls: the guided filter runs right after the network and needs those cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its warnings are not the user's business
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=providers(device))
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
        where = "the ONNX model" if isinstance(model, bytes) else str(model)
        raise WeightsError(f"{where}: not a readable ONNX model ({str(exc).splitlines()[0]})") from None


def metadata(sess) -> dict[str, str]:
    """The ``metadata_props`` of a loaded model."""
    return dict(sess.get_modelmeta().custom_metadata_map)


class OnnxNetwork:
    """An exported network run by onnxruntime: float32 array (N, 3, H, W) in [0, 1] → blur probability (N, 1, H, W).

    Parameters
    ----------
    model : path or bytes
        An ``.onnx`` file from :func:`export_network` (``defocus export``).
    device : str
        ``"cpu"``, or ``"cuda"``/``"cuda:N"`` to try onnxruntime's CUDA provider first.
    """

    def __init__(self, model: str | os.PathLike | bytes, device: str = "cpu", threads: int | None = None) -> None:
        self.session = session(model, device, threads)
        self.metadata = metadata(self.session)
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: np.ascontiguousarray(x, dtype=np.float32)})[0]


class OnnxDense:
    """The exported dense B-Net + E-Net (:func:`export_dense`) run by onnxruntime, as the ``runtime`` of
    :func:`defocus.nets.benet_dense.dense_logits`: ``(block, ys, xs) -> (bnet_logits, enet_logits)``."""

    def __init__(self, model: str | os.PathLike | bytes, device: str = "cpu", threads: int | None = None) -> None:
        self.session = session(model, device, threads)
        self.metadata = metadata(self.session)

    def __call__(self, block: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        blur, edge = self.session.run(None, {"block": np.ascontiguousarray(block, dtype=np.float32),
                                             "ys": np.asarray(ys, np.int64), "xs": np.asarray(xs, np.int64)})
        return blur, edge


def dense_runtime(bnet, enet, device: str = "cpu") -> OnnxDense:
    """The dense B-Net + E-Net of these networks in onnxruntime, exported once into the cache folder (keyed by both
    networks' weights)."""
    import torch

    from .benet import bundled_entry

    require("onnxruntime")
    state = hashlib.sha256()
    for net in (bnet, enet):
        for name, tensor in net.state_dict().items():
            state.update(name.encode())
            state.update(tensor.detach().cpu().to(torch.float32).numpy().tobytes())
    digest = state.hexdigest()
    path = cached(cache_key(digest, graph="karaali-2022-dense"),
                  lambda: export_dense(bnet, enet, bundled_entry("benet"), digest))
    return OnnxDense(path, device)
