"""Every registered method honours the interface: shape, dtype, range, and the sharp/blurred ordering."""

import re

import numpy as np
import pytest

import defocus
from defocus.errors import UnknownMethodError

from conftest import half_blurred


def test_default_detector_is_registered():
    assert defocus.DEFAULT_DETECTOR in defocus.available("dbd")


def test_unknown_method():
    with pytest.raises(UnknownMethodError, match="available"):
        defocus.load("no-such-method")


@pytest.mark.parametrize("name", defocus.available())
def test_interface(name):
    method = defocus.load(name)
    assert method.task in ("dbd", "dme")
    assert method.summary and method.paper
    image, _ = half_blurred(72, 100)
    out = method.predict(image)
    assert out.shape == image.shape[:2]
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    if method.task == "dbd":
        assert out.min() >= 0.0 and out.max() <= 1.0
    else:
        assert out.min() >= 0.0


@pytest.mark.parametrize("name", defocus.available("dbd"))
def test_detector_ranks_blurred_half_higher(name):
    image, mask = half_blurred(96, 128, sigma=3.0)
    out = defocus.load(name).predict(image)
    inner = slice(8, -8)
    left = out[inner, 8:56].mean()
    right = out[inner, 72:120].mean()
    assert right > left + 0.1, (left, right)


# ----------------------------------------------------------------------------------------------------------------------
# Metadata read from the sources without importing them


def test_static_metadata_equals_the_imported_values():
    import importlib

    from defocus import registry

    models = importlib.import_module(registry.MODELS_MODULE).MODELS
    assert registry.module_literals(registry.MODELS_MODULE)["MODELS"] == models
    for module in registry.network_modules():  # an entry that is not literal is not read: caught here for methods
        imported = getattr(importlib.import_module(module), "PRETRAINED", [])
        listed = registry.listed_pretrained(module)
        assert [p for p in listed if p.task in registry.TASKS] == [p for p in imported if p.task in registry.TASKS]
        assert all(p in imported for p in listed), module
    assert registry.all_pretrained()
    for name, target in registry.METHODS.items():
        module, cls = target.split(":")
        klass = getattr(importlib.import_module(module), cls)
        static = registry.class_literals(target)
        assert {k: static[k] for k in ("task", "summary", "paper")} == \
            {"task": klass.task, "summary": klass.summary, "paper": klass.paper}, name


def test_every_network_entry_is_a_method_and_old_names_are_aliases():
    from defocus.registry import all_pretrained

    for p in all_pretrained():
        if p.task in ("dbd", "dme"):
            info = defocus.describe(p.name)
            assert info.pretrained == p and info.task == p.task and info.summary == p.summary
            assert all(defocus.describe(a).name == p.name for a in p.aliases)
    for old in ("light-dffnet", "dffnet", "d-dffnet", "r2mrf", "defusionnet"):
        assert defocus.describe(old).pretrained is not None
    assert defocus.describe("d-dffnet").name == "dffnet.distilled"
    assert "d-dffnet" not in defocus.available()


def test_alias_loads_the_same_weights():
    a, b = defocus.load("d-dffnet"), defocus.load("dffnet.distilled")
    assert a.name == b.name == "dffnet.distilled"
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all((sa[k] == sb[k]).all() for k in sa)


# ----------------------------------------------------------------------------------------------------------------------
# Options


def test_unknown_option_names_the_method_and_its_options():
    from defocus.errors import DefocusError, UnknownOptionError

    with pytest.raises(UnknownOptionError) as exc:
        defocus.load("gradient-energy", reblur_sigmaa=3.0)
    assert isinstance(exc.value, DefocusError)
    assert str(exc.value) == "gradient-energy: unknown option 'reblur_sigmaa'; valid options: reblur_sigma, windows"


@pytest.mark.parametrize("name", defocus.available())
def test_every_method_refuses_an_unknown_option(name):
    from defocus.errors import UnknownOptionError

    with pytest.raises(UnknownOptionError, match=rf"^{re.escape(name)}: unknown option 'no_such_option'; valid"):
        defocus.load(name, no_such_option=1)


def test_known_options_are_passed_on():
    assert defocus.load("gradient-energy", reblur_sigma=3.0).reblur_sigma == 3.0
    assert defocus.load("light-dffnet", working_size=256).working_size == 256
    assert not hasattr(defocus.load("svd"), "options")


def test_wrapper_accepts_the_options_of_the_method_it_extends():
    from defocus import registry

    options = registry.options("karaali-2022-dbd")
    assert options[0] == "alpha" and "psi" in options and "device" not in options
    assert "pretrained" not in registry.options("dffnet")  # positional-only: the registry's entry, not an option
