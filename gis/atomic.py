"""Atomic outputs: write to a temporary name beside the target, then rename.

A crash, an exception or Ctrl-C during a write leaves the target untouched (absent, or the old
version) and no temporary file behind. Targets that are inputs are refused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from gis.errors import OutputExistsError


def check_target(path: str | Path, *, overwrite: bool = False,
                 inputs: Iterable[str | Path] = ()) -> Path:
    """Refuse a target that is an input, or that exists when ``overwrite`` is false."""
    p = Path(path)
    rp = p.resolve()
    for i in inputs:
        ri = Path(i).resolve()
        if rp == ri or ri.is_relative_to(rp):
            raise OutputExistsError("is an input of this run and would be overwritten", source=p,
                                    fix="choose an output path outside the inputs")
    if p.exists() and not overwrite:
        raise OutputExistsError("already exists", source=p,
                                fix="choose another output path, or pass --overwrite")
    return p


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = False,
                inputs: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    Works for files and for directories (the temporary path does not exist yet: create it).
    """
    target = check_target(path, overwrite=overwrite, inputs=inputs)
    target.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name keeps the extension, since GDAL drivers look at it
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".partial{target.suffix}",
                                    dir=target.parent)
    os.close(fd)
    os.unlink(tmp_name)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written to the temporary path for {target}")
        if tmp.is_dir() and target.exists():
            old = target.with_name(f".{target.name}.old")
            _remove(old)
            target.rename(old)
            tmp.rename(target)
            _remove(old)
        else:
            os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    # GDAL side-cars of a temporary file (e.g. .aux.xml, .ovr)
    for side in p.parent.glob(p.name + ".*"):
        with contextlib.suppress(OSError):
            side.unlink()
