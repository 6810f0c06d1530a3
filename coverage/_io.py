"""Small file helpers shared by the writers: atomic replacement, cache pickles and checksums."""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _file_mode(path: Path) -> int:
    """Permissions for a replaced file: keep an existing file's, else rw-r--r-- (mkstemp makes 0600)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o644


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """
    Yield a temporary path beside ``target``; on success it replaces ``target`` in one step.

    A reader never sees a half-written file, and a failed write leaves the
    previous file in place. The temporary path does not exist yet when
    yielded (some writers, e.g. GeoPackage, refuse an existing empty file)
    and keeps ``target``'s suffix so format detection by name still works.

    Parameters
    ----------
    target
        The file to write; its folder is created if needed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=target.suffix)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()
    try:
        yield tmp
        os.chmod(tmp, _file_mode(target))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_pickle(obj, target: str | Path) -> None:
    """Pickle ``obj`` to ``target`` atomically (:func:`atomic_path`): the caches' one writer."""
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
