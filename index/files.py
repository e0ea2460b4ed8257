"""Small file rules used across the index: atomic writes, directory fsync, checksums, sizes in words."""
from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a file renamed or linked into it) durable; a no-op where it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, replace: bool = True, prefix: str = "tmp") -> None:
    """Write `path` whole or not at all: a hidden temporary file beside it (which neither a corpus reader nor
    the watcher sees), synced, then renamed over it; with `replace=False` an existing `path` is left alone
    and FileExistsError raised. `prefix` names the temporary file (`.<prefix>-<random>.tmp`)."""
    path = Path(path)
    tmp = path.parent / f".{prefix}-{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # fails if the name exists; the file appears whole or not at all
        except (NotImplementedError, PermissionError):  # file systems without hard links
            if os.path.lexists(path):
                raise FileExistsError(path.name) from None
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def size_text(n: int) -> str:
    """A size as a person reads it: '300 KB', '5 MB', '20.5 MB'."""
    if n < 1024 * 1024:
        return f"{max(1, round(n / 1024))} KB"
    return f"{n / (1024 * 1024):.1f}".rstrip("0").rstrip(".") + " MB"
