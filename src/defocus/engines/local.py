"""The local engine: one process; photos are decoded ahead and written behind in two background threads while the
main thread runs the method, so a batch is not held up by JPEG decoding, PNG/JPEG encoding or ``fsync``.

Memory stays bounded by the prefetch depth ``N``: at most ``N`` photos decoded ahead, one being computed, and ``N``
computed photos waiting for their files to be written. The method always runs in the main thread, so Ctrl-C and
SIGTERM stop it at once; the background threads then finish (or drop) their current photo, whose files are placed
whole or not at all, and queued work is cancelled.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterable, Iterator

from . import PHOTO_ERRORS, Outcome, PhotoJob, PhotoSteps, finish_photo, photo_failure, refuse_existing, write_photo


def run_local(steps: PhotoSteps, jobs: Iterable[PhotoJob], method: Any, *, prefetch: int = 2) -> Iterator[Outcome]:
    """Run every job; yield their outcomes in input order as they finish. ``prefetch=0``: each photo is read,
    computed and written in turn in this thread (the behaviour before background I/O, kept as a baseline)."""
    if prefetch <= 0 or not steps.overlappable:
        yield from _sequential(steps, jobs, method)
    else:
        yield from _overlapped(steps, jobs, method, prefetch)


def _sequential(steps: PhotoSteps, jobs: Iterable[PhotoJob], method: Any) -> Iterator[Outcome]:
    for job in jobs:
        start = time.perf_counter()
        try:
            refuse_existing(job.files, steps.force)
            value = finish_photo(steps, method, job, steps.read(job.path))
        except PHOTO_ERRORS as exc:
            yield Outcome(job, photo_failure(job.path, exc), time.perf_counter() - start)
        else:
            yield Outcome(job, None, time.perf_counter() - start, value)


def _read(steps: PhotoSteps, job: PhotoJob) -> Any:
    refuse_existing(job.files, steps.force)
    return steps.read(job.path)


def _write(write, job: PhotoJob, force: bool) -> tuple[float, Any]:
    value = write_photo(write, job.files, force)
    return time.perf_counter(), value


def _overlapped(steps: PhotoSteps, jobs: Iterable[PhotoJob], method: Any, depth: int) -> Iterator[Outcome]:
    todo = iter(jobs)
    reads: deque[tuple[PhotoJob, Future]] = deque()
    # In input order: (job, start time, the write's future, or the failure message of a photo that never got there).
    behind: deque[tuple[PhotoJob, float, Future | str]] = deque()
    reader = ThreadPoolExecutor(1, thread_name_prefix="defocus-read")
    writer = ThreadPoolExecutor(1, thread_name_prefix="defocus-write")

    def read_ahead() -> None:
        while len(reads) < depth:
            job = next(todo, None)
            if job is None:
                return
            reads.append((job, reader.submit(_read, steps, job)))

    def settle(job: PhotoJob, start: float, work: Future | str) -> Outcome:
        if isinstance(work, str):
            return Outcome(job, work, time.perf_counter() - start)
        try:
            end, value = work.result()
        except PHOTO_ERRORS as exc:
            return Outcome(job, photo_failure(job.path, exc), time.perf_counter() - start)
        return Outcome(job, None, end - start, value)

    try:
        read_ahead()
        while reads:
            job, decoded = reads.popleft()
            read_ahead()
            start = time.perf_counter()
            try:
                write = steps.compute(method, job.path, decoded.result())
            except PHOTO_ERRORS as exc:
                behind.append((job, start, photo_failure(job.path, exc)))
            else:
                while sum(not isinstance(w, str) for _, _, w in behind) >= depth:
                    yield settle(*behind.popleft())
                behind.append((job, start, writer.submit(_write, write, job, steps.force)))
            while behind and (isinstance(behind[0][2], str) or behind[0][2].done()):
                yield settle(*behind.popleft())
        while behind:
            yield settle(*behind.popleft())
    finally:
        reader.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True, cancel_futures=True)
