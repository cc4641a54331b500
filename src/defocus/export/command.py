"""``defocus export -m NAME -o FILE.onnx [--weights FILE] [--force]``.

NAME is a learned blur detector (``defocus methods``), ``benet`` or ``enet`` (the patch classifiers inside
``karaali-2022``), or ``karaali-2022`` (B-Net and E-Net evaluated densely over an image block). The file is the
network alone, with what it expects and returns in its metadata (docs/onnx.md); it is written atomically and never
over an existing file without ``--force``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UsageError

#: Names besides the learned detectors: B-Net / E-Net on patches, and their dense form.
PATCH_NETWORKS = ("benet", "enet")
DENSE = "karaali-2022"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--method", required=True, metavar="NAME",
                   help="a learned detector (see 'defocus methods'), benet, enet, or karaali-2022 (dense B-Net + "
                        "E-Net)")
    p.add_argument("-o", "--output", required=True, metavar="FILE.onnx", help="the ONNX file to write")
    p.add_argument("--weights", metavar="FILE",
                   help="a detector's model file from 'defocus train' (OUT/model.safetensors) instead of its "
                        "bundled weights")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")


def onnx_bytes(name: str, weights: str | None = None) -> bytes:
    """The ONNX encoding of the network ``name`` (see the module docstring)."""
    from .. import registry
    from ..nets import onnx as ox

    ox.require("onnx")
    if name in PATCH_NETWORKS or name == DENSE:
        if weights is not None:
            raise UsageError(f"--weights: exporting {name} takes its bundled weights only")
        from ..methods.karaali_2022 import load_networks
        from ..nets.benet import bundled_entry

        bnet_entry, enet_entry = bundled_entry("benet"), bundled_entry("enet")
        bnet, enet = load_networks()
        if name == DENSE:
            return ox.export_dense(bnet, enet, bnet_entry, f"{bnet_entry.sha256},{enet_entry.sha256}")
        entry, net = (bnet_entry, bnet) if name == "benet" else (enet_entry, enet)
        return ox.export_patch_classifier(net, entry, entry.sha256)
    info = registry.describe(name)
    if info.pretrained is None:
        raise UsageError(f"-m {name}: a classic method has no network to export; choose a learned one, benet, "
                         f"enet or {DENSE}")
    kwargs = {} if weights is None else {"weights": weights}
    return registry.load(info.name, runtime="torch", **kwargs).onnx_bytes()


def run(args: argparse.Namespace) -> int:
    from ..nets.onnx import export_file

    out = Path(args.output)
    if out.exists() and not args.force:
        raise UsageError(f"-o {out}: exists already (use --force to overwrite)")
    if out.parent != Path("") and not out.parent.is_dir():
        raise UsageError(f"-o {out}: folder {out.parent} does not exist")
    data = onnx_bytes(args.method, args.weights)
    export_file(data, out, force=args.force)
    print(f"defocus: wrote {out} ({len(data) / 1e6:.1f} MB): {args.method}", flush=True)
    return 0
