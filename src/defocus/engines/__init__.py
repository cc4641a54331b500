"""Engines that run a batch command's per-photo work: ``local`` (this process, decoding and writing in background
threads while the method computes) and ``ray`` (a Ray Data pipeline on a Ray cluster, :mod:`.ray_engine`).

A batch command describes what it does to one photo as :class:`PhotoSteps` — read, compute, write — and
``cli.run_batch`` hands the photos to an engine. Both engines run the same three steps through :func:`finish_photo`
and :func:`write_photo`, so a photo's files are byte for byte the same whichever engine wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import DefocusError

#: What a photo's write step gets and does: ``write(files, stage)`` stages every file of ``files`` and may return a
#: small JSON-able value for the driver (cull: the photo's report row; None for most commands).
Write = Callable[[list[Path], "StagedFiles"], Any]

#: The errors that fail one photo and let the batch go on (anything else is a bug and stops the run).
PHOTO_ERRORS = (DefocusError, MemoryError, RecursionError, ArithmeticError, LookupError, RuntimeError, TypeError,
                ValueError, OSError)


def photo_failure(path: Path, exc: BaseException) -> str:
    """The one-line message for a photo that failed with ``exc`` (one of :data:`PHOTO_ERRORS`)."""
    if isinstance(exc, DefocusError):
        return str(exc)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{path}: {type(exc).__name__}: {text}"


@dataclass(frozen=True)
class MethodRequest:
    """The method a command line asks for (``-m``, ``--device``, ``--weights``, ``--option``, ``--runtime``), so
    that every worker can load its own copy: once in this process for the local engine, once per actor on Ray."""

    name: str
    task: str | None = None
    device: str = "cpu"
    weights: str | None = None
    options: tuple[str, ...] = ()
    runtime: str | None = None

    def load(self, device: str | None = None):
        """The loaded method (:func:`defocus.registry.load_from_args`), on ``device`` if given."""
        from .. import registry

        return registry.load_from_args(self.name, task=self.task, device=device or self.device,
                                       weights=self.weights, options=list(self.options),
                                       runtime=self.runtime)


@dataclass(frozen=True)
class PhotoSteps:
    """A batch command's work on one photo, in three steps an engine can overlap or distribute.

    ``read(path)`` decodes the photo (a background thread locally, a Ray task on Ray); ``compute(method, path,
    loaded)`` runs the method and returns the photo's ``write(files, stage)``, which renders and stages its output
    files (a background thread locally). ``method`` says which method each worker loads (None: ``compute`` needs
    none). Every callable must be picklable by cloudpickle for the Ray engine (closures are).
    """

    read: Callable[[Path], Any]
    compute: Callable[[Any, Path, Any], Write]
    method: MethodRequest | None = None
    force: bool = False
    #: False for a command whose ``write`` does everything (reads and computes too): the steps then run in turn.
    overlappable: bool = True


@dataclass(frozen=True)
class PhotoJob:
    """One photo of a batch: its place in the input order, its path and the files it writes."""

    index: int
    path: Path
    files: list[Path]


@dataclass(frozen=True)
class Outcome:
    """How a photo ended: ``failure`` is its one-line error message, or None when its files were written; ``value``
    is what its write step returned."""

    job: PhotoJob
    failure: str | None
    seconds: float = 0.0
    value: Any = None


def refuse_existing(files: list[Path], force: bool) -> None:
    """Without ``force``, a photo whose outputs exist fails before any work (its files are checked again, atomically,
    when they are placed)."""
    from ..errors import OutputExistsError

    if not force:
        for f in files:
            if f.exists():
                raise OutputExistsError(f"{f}: exists already (use --force to overwrite)")


def write_photo(write: Write, files: list[Path], force: bool) -> Any:
    """Run a photo's write step into one :class:`~defocus.io.StagedFiles` (its files appear together or not at all);
    return what the step returned."""
    from ..io import StagedFiles

    with StagedFiles(force) as stage:
        return write(files, stage)


def finish_photo(steps: PhotoSteps, method: Any, job: PhotoJob, loaded: Any) -> Any:
    """Compute and write one decoded photo, in this thread (the sequential path and each Ray actor); return what its
    write step returned."""
    return write_photo(steps.compute(method, job.path, loaded), job.files, steps.force)
