"""One registry for every method, classic or learned.

Two kinds of entries, each registered in one place:

* a **classic method** is a class with the attributes of :class:`Method` and a ``predict(image)``, registered by one
  line in :data:`METHODS` (``name -> "module:Class"``);
* a **learned method** is a set of trained weights: one :class:`defocus.pretrained.Pretrained` entry in the
  ``PRETRAINED`` list at the end of its network's module (every module named in
  :data:`defocus.nets.models.MODELS`), run by the one generic :class:`defocus.methods.networks.NetworkDetector`.
  A weight variant is a tag of its network's name (``dffnet.distilled``); names users typed before stay as aliases.

Listing and describing methods reads their metadata **from the source files, without importing them** (so
``defocus methods`` never imports torch or a network): the class attributes ``task``, ``summary`` and ``paper`` of a
classic method, the ``PRETRAINED`` entries of a network module, and ``MODELS`` itself, are parsed with :mod:`ast`
and must therefore be literals (or names of module-level literals of the same module). ``tests/test_registry.py`` checks
that what is read this way equals what importing the modules gives. Modules are imported only by :func:`load`.

Options are checked once, here: :func:`load` refuses any keyword that the method's ``__init__`` does not name
(following ``**kwargs`` up the class hierarchy), with a one-line :class:`~defocus.errors.UnknownOptionError`.

>>> import defocus
>>> "gradient-energy" in defocus.available()
True
>>> defocus.describe("d-dffnet").name
'dffnet.distilled'
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputArrayError, UnknownMethodError, UnknownOptionError, UsageError
from .pretrained import Pretrained

# Classic methods: name -> "module:Class". Add one line per method (networks are found through their PRETRAINED).
METHODS: dict[str, str] = {
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
    "xu-2017": "defocus.methods.xu_2017:Xu2017",
    "ltcop": "defocus.methods.ltcop:LTCoP",
    "pcnn-lbp": "defocus.methods.pcnn_lbp:PCNNLBP",
    "zhang-2016": "defocus.methods.zhang_2016:Zhang2016",
    "liu-2016": "defocus.methods.liu_2016:Liu2016",
    "pyramid": "defocus.methods.pyramid:Pyramid",
    "focus-guided": "defocus.methods.focus_guided:FocusGuided",
    "andrade-2016": "defocus.methods.andrade_2016:Andrade2016",
    "liu-2020": "defocus.methods.liu_2020:Liu2020",
    "ma-2020": "defocus.methods.ma_2020:Ma2020",
    "msvd": "defocus.methods.msvd:MSVD",
}

#: The class that runs every learned blur detector from its :class:`Pretrained` entry.
NETWORK_DETECTOR = "defocus.methods.networks:NetworkDetector"
#: Where the network architectures are registered (their modules hold the ``PRETRAINED`` lists).
MODELS_MODULE = "defocus.nets.models"

#: The method ``defocus detect`` uses when no ``-m`` is given: the most accurate bundled detector on held-out
#: synthetic scenes and on independent real photos (docs/benchmarks.md); ``light-dffnet`` is the fast one.
DEFAULT_DETECTOR = "dffnet"
#: The method ``defocus estimate`` uses when no ``-m`` is given: the most accurate on the RTF sample of every
#: estimator measured (docs/benchmarks.md, "Defocus map accuracy"), 1.4 s per 360×360 RTF image on a 2-core CPU.
DEFAULT_ESTIMATOR: str | None = "karaali-2022"

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

    A method's options are the keyword parameters of its ``__init__`` (besides ``device``); :func:`load` refuses
    any other.
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

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

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
    @functools.wraps(predict)
    def checked(self, image, *args, **kw):
        return predict(self, as_photo(image), *args, **kw)

    checked._checks_input = True
    return checked


@dataclass(frozen=True)
class MethodInfo:
    """What the registry knows of a method without importing it.

    Attributes
    ----------
    name : str
        Registry name (the canonical one when looked up by an alias).
    target : str
        ``"module:Class"`` that :func:`load` builds.
    task, summary, paper : str
        As :class:`Method`.
    pretrained : Pretrained or None
        The weight configuration of a learned method (None for a classic one).
    aliases : tuple of str
        Other names that resolve to this method.
    """

    name: str
    target: str
    task: str
    summary: str
    paper: str
    pretrained: Pretrained | None = None
    aliases: tuple[str, ...] = ()


# ----------------------------------------------------------------------------------------------------------------------
# Reading literals from source files


def _source_tree(module: str) -> ast.Module:
    # The file is found from the top-level package's folder, so no package on the way (``defocus.nets``) is imported.
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.origin:
        raise ImportError(f"registry: module {module!r} not found")
    path = Path(spec.origin)
    if rest:
        inside = path.parent.joinpath(*rest)
        path = inside.with_suffix(".py") if inside.with_suffix(".py").is_file() else inside / "__init__.py"
        if not path.is_file():
            raise ImportError(f"registry: module {module!r} not found")
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _literal(node: ast.AST, names: dict[str, Any]) -> Any:
    """The value of a literal expression; names of module-level literals and ``Pretrained(...)`` calls allowed."""
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise ValueError(f"{node.id!r} is not a module-level literal")
        return names[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Pretrained" \
            and not node.args:
        return Pretrained(**{k.arg: _literal(k.value, names) for k in node.keywords})
    if isinstance(node, ast.List):
        return [_literal(e, names) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e, names) for e in node.elts)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(k, names): _literal(v, names) for k, v in zip(node.keys, node.values)}
    return ast.literal_eval(node)


def _assignments(body: list[ast.stmt], names: dict[str, Any]) -> dict[str, Any]:
    """``name -> value`` of the simple assignments in ``body`` whose values are literals (others are skipped)."""
    found: dict[str, Any] = {}
    for stmt in body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            target, value = stmt.targets[0].id, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            target, value = stmt.target.id, stmt.value
        else:
            continue
        try:
            found[target] = _literal(value, {**names, **found})
        except ValueError:
            continue
    return found


@functools.lru_cache(maxsize=None)
def module_literals(module: str) -> dict[str, Any]:
    """The module-level literal assignments of ``module``, read from its source without importing it."""
    return _assignments(_source_tree(module).body, {})


@functools.lru_cache(maxsize=None)
def class_literals(target: str) -> dict[str, Any]:
    """The literal class attributes of ``"module:Class"``, read from the module's source without importing it."""
    module, cls = target.split(":")
    tree = _source_tree(module)
    names = _assignments(tree.body, {})
    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef) and stmt.name == cls:
            return _assignments(stmt.body, names)
    raise ImportError(f"registry: no class {cls!r} in {module}")


def network_modules() -> list[str]:
    """The modules of every architecture in :data:`defocus.nets.models.MODELS`, in its order."""
    models = module_literals(MODELS_MODULE)["MODELS"]
    return list(dict.fromkeys(target.split(":")[0] for target in models.values()))


@functools.lru_cache(maxsize=None)
def listed_pretrained(module: str) -> list[Pretrained]:
    """The literal entries of ``module``'s ``PRETRAINED`` list, read from its source without importing it.

    An entry with a computed field is left out: allowed only where it is no method (task ``patch``, used inside
    one); ``tests/test_registry.py`` checks that every dbd/dme entry is read.
    """
    tree = _source_tree(module)
    names = _assignments(tree.body, {})
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.List) \
                and [getattr(t, "id", None) for t in stmt.targets] == ["PRETRAINED"]:
            entries = []
            for element in stmt.value.elts:
                try:
                    entries.append(_literal(element, names))
                except ValueError:
                    continue
            return entries
    return []


def all_pretrained() -> list[Pretrained]:
    """Every :class:`Pretrained` entry of every network module, also those used inside a method (task ``patch``).
    Imports the network modules (and torch); listing methods does not need this."""
    return [p for module in network_modules() for p in getattr(importlib.import_module(module), "PRETRAINED", [])]


# ----------------------------------------------------------------------------------------------------------------------
# The table


@functools.lru_cache(maxsize=None)
def _table() -> tuple[dict[str, MethodInfo], dict[str, str]]:
    """``(name -> MethodInfo, alias -> name)``."""
    infos: dict[str, MethodInfo] = {}
    for name, target in METHODS.items():
        attrs = class_literals(target)
        missing = [a for a in ("task", "summary", "paper") if a not in attrs]
        if missing:
            raise ImportError(f"registry: {target} needs literal class attribute(s) {', '.join(missing)}")
        infos[name] = MethodInfo(name, target, attrs["task"], attrs["summary"], attrs["paper"])
    aliases: dict[str, str] = {}
    for p in (p for module in network_modules() for p in listed_pretrained(module)):
        if p.task not in TASKS:  # e.g. B-Net's patch classifier, used inside a method
            continue
        for name in (p.name, *p.aliases):
            if name in infos or name in aliases:
                raise ImportError(f"registry: the name {name!r} is registered twice")
            aliases[name] = p.name
        infos[p.name] = MethodInfo(p.name, NETWORK_DETECTOR, p.task, p.summary, p.paper, p, p.aliases)
    return infos, {a: n for a, n in aliases.items() if a != n}


def _canonical(name: str) -> str:
    infos, aliases = _table()
    name = aliases.get(name, name)
    if name not in infos:
        raise UnknownMethodError(f"unknown method {name!r}; available: {', '.join(sorted(infos))}")
    return name


def available(task: str | None = None) -> list[str]:
    """Names of the registered methods (sorted, aliases excluded), optionally only those of one task."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")
    infos, _ = _table()
    return sorted(n for n, info in infos.items() if task is None or info.task == task)


def describe(name: str) -> MethodInfo:
    """What the registry knows of the method ``name`` (or an alias of it), without importing it."""
    return _table()[0][_canonical(name)]


def pretrained(name: str) -> Pretrained:
    """The :class:`Pretrained` entry named ``name`` (or one of its aliases), among every network's entries
    (imports the network modules)."""
    for p in all_pretrained():
        if name == p.name or name in p.aliases:
            return p
    known = ", ".join(p.name for p in all_pretrained())
    raise UnknownMethodError(f"no pretrained weights named {name!r}; available: {known}")


def _class(info: MethodInfo) -> type[Method]:
    module, cls = info.target.split(":")
    return getattr(importlib.import_module(module), cls)


def option_names(cls: type) -> list[str]:
    """The options of a method class: keyword parameters of ``__init__`` other than ``device`` (positional-only
    ones are not options), and, where ``__init__`` takes ``**kwargs``, those of the next ``__init__`` up the MRO."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = list(inspect.signature(klass.__init__).parameters.values())[1:]
        names += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                  and p.name != "device" and p.name not in names]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


def options(name: str) -> list[str]:
    """The option names :func:`load` accepts for the method ``name`` (imports its module)."""
    return option_names(_class(describe(name)))


def load(name: str, device: str = "cpu", **options: Any) -> Method:
    """Build the method registered under ``name`` (or an alias of it).

    Parameters
    ----------
    name : str
        A name from :func:`available`.
    device : str
        ``"cpu"`` or ``"cuda"``; classic methods ignore it.
    **options
        Method-specific keyword options (see each method's docstring; :func:`options` lists their names).

    Raises
    ------
    UnknownMethodError
        ``name`` is not registered.
    UnknownOptionError
        An option the method does not have.
    """
    info = describe(name)
    cls = _class(info)
    valid = option_names(cls)
    unknown = [k for k in options if k not in valid]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise UnknownOptionError(f"{info.name}: unknown option{plural} {', '.join(map(repr, unknown))}; "
                                 f"valid options: {', '.join(valid) or 'none'}")
    if info.pretrained is not None:
        return cls(info.pretrained, device=device, **options)
    cls.name = info.name
    return cls(device=device, **options)


# ----------------------------------------------------------------------------------------------------------------------
# What a command line asks for


def parse_options(items: list[str], flag: str = "--option") -> dict[str, Any]:
    """``KEY=VALUE`` strings to a dict; values are Python literals where they parse (``3``, ``0.5``, ``True``,
    ``(41,)``), else strings (``focus``, ``model.pth``). A malformed item is a :class:`UsageError` naming ``flag``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"{flag} {item!r}: expected KEY=VALUE")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            out[key] = text
    return out


def check_device(device: str) -> None:
    """Refuse a device string other than ``cpu``, ``cuda`` or ``cuda:N``, and CUDA where none is available."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise UsageError(f"--device {device}: unknown device; use cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA device is available on this machine")


def load_from_args(name: str, *, task: str | None = None, device: str = "cpu", weights: str | None = None,
                   options: list[str] | tuple[str, ...] = (), runtime: str | None = None) -> Method:
    """The method a command line asks for: ``-m NAME`` (of ``task`` if given), ``--device``, ``--weights FILE``,
    the ``--option KEY=VALUE`` strings and ``--runtime`` (a learned method's: torch or onnx). Every mistake in them
    is a :class:`UsageError` (the CLI exits 2)."""
    info = describe(name)
    if task is not None and info.task != task:
        other = "detect" if info.task == "dbd" else "estimate"
        raise UsageError(f"method {name!r} is a {info.task.upper()} method; use 'defocus {other}'")
    check_device(device)
    kwargs = parse_options(list(options), "--option")
    if weights is not None:
        kwargs["weights"] = weights
    if runtime is not None:
        if "runtime" not in option_names(_class(info)):
            raise UsageError(f"--runtime {runtime}: method {info.name!r} runs no network; the runtime is a learned "
                             "method's")
        kwargs["runtime"] = runtime
    return load(name, device=device, **kwargs)
