"""What a training run tells on stderr: one-line messages, and progress — a live bar on a terminal, plain lines in
a log file.

A bar redraws itself with carriage returns, which a log file keeps as one unreadable line; when stderr is not a
terminal (``defocus train ... 2> log``, a batch job), :func:`progress` writes a plain line now and then instead.
"""

from __future__ import annotations

import sys
import time


def say(line: str) -> None:
    """One message of ``defocus train`` on stderr."""
    print(f"defocus train: {line}", file=sys.stderr, flush=True)


class _Lines:
    """The part of tqdm's interface the trainer uses, printing ``desc: n/total unit`` lines."""

    def __init__(self, total: int, initial: int, desc: str, unit: str, every_s: float, file):
        self.total, self.n, self.desc, self.unit = total, initial, desc, unit
        self.every_s, self.file = every_s, file
        self._last = time.monotonic()
        self._postfix = ""

    def update(self, k: int = 1) -> None:
        self.n += k
        now = time.monotonic()
        if now - self._last >= self.every_s or self.n >= self.total:
            self._last = now
            self.write(f"{self.desc}: {self.n}/{self.total} {self.unit}{self._postfix}")

    def set_postfix(self, refresh: bool = False, **values) -> None:
        self._postfix = "".join(f", {k} {v}" for k, v in values.items())

    def write(self, text: str, file=None) -> None:
        print(text, file=file or self.file, flush=True)

    def close(self) -> None:
        pass


class _Off(_Lines):
    def update(self, k: int = 1) -> None:
        self.n += k


def progress(total: int, desc: str, unit: str, *, enabled: bool = True, initial: int = 0, every_s: float = 30.0,
             file=None):
    """A tqdm bar when ``file`` (default stderr) is a terminal, else plain lines at most every ``every_s`` seconds;
    nothing but :meth:`write` when not ``enabled``."""
    file = file or sys.stderr
    if not enabled:
        return _Off(total, initial, desc, unit, every_s, file)
    if file.isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=file, dynamic_ncols=True)
    return _Lines(total, initial, desc, unit, every_s, file)
