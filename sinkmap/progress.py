"""Progress and timings of a run's steps (stderr lines; timings go into the manifest)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Steps:
    """Times named steps and prints ``[i/n] step ... 1.2 s`` lines when ``verbose``."""

    def __init__(self, total: int, *, verbose: bool = True, stream: TextIO | None = None):
        self.total, self.verbose, self.stream = total, verbose, stream or sys.stderr
        self.done = 0
        self.timings: dict[str, float] = {}

    def _print(self, text: str, end: str = "\n") -> None:
        if self.verbose:
            print(text, end=end, file=self.stream, flush=True)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.done += 1
        self._print(f"[{self.done}/{self.total}] {name} ...", end="")
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.timings[name] = round(dt, 3)
        self._print(f" {dt:.1f} s")

    def blocks(self, i: int, n: int) -> None:
        """Per-block callback for long steps: a dot every ~10 %."""
        if self.verbose and n >= 10 and i % max(n // 10, 1) == 0:
            print(".", end="", file=self.stream, flush=True)
