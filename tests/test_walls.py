"""The layers' walls: what may be imported without torch or the synthetic engine, each checked in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from defocus.registry import METHODS

#: Method modules that run networks (B-Net and E-Net), so they may import torch.
LEARNED = {"defocus.methods.karaali_2022", "defocus.methods.karaali_2022_dbd"}
CLASSIC = sorted({target.split(":")[0] for target in METHODS.values()} - LEARNED)
LIGHT_MODULES = ["defocus.io", "defocus.evaluate", "defocus.filters", *CLASSIC]


def _imported_after(code: str) -> set[str]:
    """Names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m == "torch" or m == "defocus.synth" or m.startswith("defocus.synth."))


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_module_imports_without_torch(module):
    assert "torch" not in _imported_after(f"import {module}")


@pytest.mark.parametrize("argv", [["--version"], ["methods"], ["methods", "--task", "dme"]])
def test_cli_listing_imports_neither_torch_nor_the_synthetic_engine(argv):
    code = f"from defocus.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    assert _heavy(_imported_after(code)) == []


def test_describing_every_method_imports_no_method_module():
    code = "import defocus\nfor n in defocus.available():\n    defocus.describe(n)"
    modules = _imported_after(code)
    assert not [m for m in modules if m.startswith(("defocus.methods.", "defocus.nets."))]
    assert "torch" not in modules
