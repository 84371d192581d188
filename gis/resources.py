"""Locate the runtime data shipped with sinkmap (tables, the demo county outline)."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path


def packaged(*parts: str) -> Path:
    """Path of a file in the installed ``sinkmap_data`` package (the repo's ``data/`` folder)."""
    ref = files("sinkmap_data").joinpath(*parts)
    with as_file(ref) as p:  # a real path for a normal (non-zip) install
        return Path(p)
