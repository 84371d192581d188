"""The sinkmap error hierarchy.

Every error a user can meet names the file (or layer) involved, the problem, and the fix.
Catch :class:`SinkmapError` to catch them all; the CLI turns them into a one-line message and
exit status 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path


class SinkmapError(Exception):
    """Base class of every error sinkmap raises on purpose."""

    def __init__(self, problem: str, *, source: str | Path | None = None, fix: str | None = None):
        self.problem = problem
        self.source = str(source) if source is not None else None
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{self.source}: {self.problem}" if self.source else self.problem
        return f"{head}\n  fix: {self.fix}" if self.fix else head


class InputError(SinkmapError):
    """An input file is missing, unreadable or malformed."""


class CRSError(SinkmapError):
    """A layer has no CRS, or a CRS that cannot be used for the requested operation."""


class CRSMismatchError(CRSError):
    """Two layers that must share a CRS do not."""


class GridMismatchError(SinkmapError):
    """Two rasters that must share a grid (CRS, transform, shape) do not."""


class NoDataError(SinkmapError):
    """A raster (or the part of it that matters) holds only nodata."""


class CoverageError(SinkmapError):
    """Zones or features do not overlap the raster they are summarised against."""


class CoefficientError(SinkmapError):
    """A coefficient table is malformed, or lacks rows for classes present in the data."""


class ConfigError(SinkmapError):
    """A project file is invalid. ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[str], *, source: str | Path | None = None):
        self.problems = list(problems)
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s):\n{body}", source=source)


class OutputExistsError(SinkmapError):
    """An output already exists and overwriting was not asked for, or would destroy an input."""
