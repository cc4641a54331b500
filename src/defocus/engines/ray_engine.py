"""The Ray engine (``--engine ray``): a batch as a Ray Data pipeline, on one machine or a Ray cluster.

The photos' paths become a dataset (``ray.data.from_items``); ``map_batches`` hands them, a few at a time, to a
pool of actors, each of which loads the method once (:meth:`MethodRequest.load`, on CUDA when ``--num-gpus`` gives
it GPUs) and runs the local engine (:func:`defocus.engines.local.run_local`) on its photos: decode in a background
thread, compute, write in another — the code a local run executes, so each photo's files are written, atomically
and together, where and as the local engine writes them. Decoding inside the actor keeps decoded photos out of the
object store and needs no CPU beyond the actors' own. Every node must therefore see the inputs and
the output folder at the same paths (one machine, or a shared file system), and have this ``defocus`` installed.

A photo that fails comes back as its one-line message and the job goes on; the messages are printed in input
order when the job ends; what a photo's write step returns (cull: its report row) comes back as JSON text.
Resumable: ``cli.run_batch`` leaves out the photos whose outputs all exist (:func:`finished`) unless ``--force`` is
given or the command collects a value per photo (as cull does: every photo needs its report row).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

from ..errors import DefocusError, UsageError
from . import Outcome, PhotoJob, PhotoSteps
from .local import run_local

INSTALL_HINT = "pip install 'defocus[ray]'"

#: Photos an actor is handed at a time: enough for its background threads to overlap decoding, computing and
#: writing, few enough that the photos spread evenly over the actors and a lost actor costs little work again.
BATCH_SIZE = 4


def finished(jobs: list[PhotoJob]) -> list[PhotoJob]:
    """The photos a previous run completed: every one of their output files exists."""
    return [job for job in jobs if job.files and all(f.exists() for f in job.files)]


def import_ray():
    """The ``ray`` module with Ray Data, or a :class:`UsageError` saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise UsageError(f"--engine ray: Ray is not installed; {INSTALL_HINT}") from None
    return ray


class _PhotoWorker:
    """A Ray Data actor: loads the method once, then runs the local engine on each batch of photos it is handed
    (decoding the next photo and writing the last one in background threads while the method computes)."""

    def __init__(self, steps: PhotoSteps, device: str | None, prefetch: int) -> None:
        self.steps, self.prefetch = steps, prefetch
        self.method = steps.method.load(device) if steps.method is not None else None

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        jobs = [PhotoJob(int(index), Path(path), [Path(f) for f in json.loads(files)])
                for index, path, files in zip(batch["index"], batch["path"], batch["files"])]
        out: dict[str, list] = {"index": [], "failure": [], "seconds": [], "value": []}
        for outcome in run_local(self.steps, jobs, self.method, prefetch=self.prefetch):
            out["index"].append(outcome.job.index)
            out["failure"].append(outcome.failure or "")
            out["seconds"].append(outcome.seconds)
            # As JSON text: one column type whatever a command returns (a score may be NaN).
            out["value"].append(json.dumps(outcome.value))
        return out


def _pool_size(ray, engine) -> tuple[int, int]:
    """(min, max) actors: ``--num-actors``, else what the cluster's GPUs (with ``--num-gpus``) or CPUs (``--num-cpus``
    each, one left over) allow."""
    if engine.num_actors:
        return engine.num_actors, engine.num_actors
    resources = ray.cluster_resources()
    if engine.num_gpus:
        most = int(resources.get("GPU", 0) // engine.num_gpus)
    else:
        most = int((resources.get("CPU", 1) - 1) // engine.num_cpus)
    return 1, max(1, most)


def run_ray(steps: PhotoSteps, jobs: list[PhotoJob], engine) -> Iterator[Outcome]:
    """Run ``jobs`` on Ray; when the job ends, yield every photo's outcome in input order.

    Joins the cluster at ``engine.address`` (else ``RAY_ADDRESS``, else starts Ray on this machine for the run) unless
    Ray is initialised already in this process, and leaves it as it found it.
    """
    ray = import_ray()
    if not jobs:
        return
    started = not ray.is_initialized()
    if started:
        ray.init(address=engine.address, include_dashboard=False, logging_level="WARNING")
    try:
        # Ray Data logs its execution plan and progress at INFO: keep the batch's own lines readable (a terminal still
        # gets its progress bars; the logs stay in /tmp/ray/session_latest/logs/ray-data).
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        low, high = _pool_size(ray, engine)
        device = "cuda" if engine.num_gpus else None
        rows = [{"index": job.index, "path": str(job.path), "files": json.dumps([str(f) for f in job.files])}
                for job in jobs]
        done = ray.data.from_items(rows).map_batches(
            _PhotoWorker, fn_constructor_args=(steps, device, engine.prefetch), batch_size=BATCH_SIZE,
            compute=ray.data.ActorPoolStrategy(min_size=low, max_size=high),
            num_cpus=engine.num_cpus, num_gpus=engine.num_gpus or None)
        results = {int(row["index"]): row for row in done.iter_rows()}
    except ray.exceptions.RayError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DefocusError(f"--engine ray: the Ray job failed ({first})") from None
    finally:
        if started:
            ray.shutdown()
    for job in jobs:
        row = results[job.index]
        yield Outcome(job, row["failure"] or None, float(row["seconds"]), json.loads(row["value"]))
