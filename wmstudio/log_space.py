"""Room on the disk for a run log's next commit: checked, and reserved where the system allows, before HDF5 writes."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

from wmstudio.errors import RunLogError

SPACE_RESERVE = 1 << 20  # bytes a data commit leaves free, so that the log can still be marked failed
STATUS_RESERVE = 64 << 10  # bytes an attribute-only commit (status, stage end) needs


def check_space(path: Path, nbytes: int, reserve: int = SPACE_RESERVE) -> None:
    """Refuse a commit of about ``nbytes`` that would leave less than ``reserve`` bytes on the disk.

    HDF5 cannot recover from a write that fails halfway (it leaves the file unclosable and crashes
    the process when it is closed), so a full disk is caught here, before anything is written. Where
    the system allows it (Linux ``fallocate`` with ``FALLOC_FL_KEEP_SIZE``), the room the commit
    needs is also reserved on the disk for the log (allocated past its end, the file's size
    unchanged), so another process filling the disk after this check cannot make the write fail.
    """
    try:
        st = os.statvfs(path.parent if path.parent != Path("") else Path("."))
    except (OSError, AttributeError):  # no statvfs (Windows) or the folder is gone: let the write report it
        return
    free = st.f_bavail * st.f_frsize + _reserved(path)
    need = int(nbytes * 1.25) + reserve
    if free < need or not _reserve(path, need):
        raise RunLogError(f"{path}: disk full: {free / 2**20:.1f} MiB free on its filesystem, a commit needs "
                          f"about {need / 2**20:.1f} MiB (data + reserve); free some space and run again")


def _reserved(path: Path) -> int:
    """Bytes already allocated past the end of the log (reserved by an earlier commit's check)."""
    try:
        st = os.stat(path)
    except OSError:
        return 0
    return max(0, getattr(st, "st_blocks", 0) * 512 - st.st_size)


def _reserve(path: Path, nbytes: int) -> bool:
    """Allocate ``nbytes`` past the end of an existing log for its next commit; False: no room on the disk.

    True also where nothing can be reserved (no such call, or a filesystem without it): the free-space
    check above is then all there is.
    """
    fallocate = _fallocate()
    if fallocate is None:
        return True
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return True  # not created yet (its creation is a small commit) or not writable: the open reports it
    try:
        import ctypes

        if fallocate(fd, 1, os.fstat(fd).st_size, nbytes) == 0:  # 1: FALLOC_FL_KEEP_SIZE
            return True
        return ctypes.get_errno() != errno.ENOSPC
    finally:
        os.close(fd)


_FALLOCATE: list[Any] = []


def _fallocate() -> Any:
    """libc's ``fallocate`` (Linux), or None."""
    if not _FALLOCATE:
        fn = None
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                fn = ctypes.CDLL(None, use_errno=True).fallocate
                fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
                fn.restype = ctypes.c_int
            except (OSError, AttributeError):
                fn = None
        _FALLOCATE.append(fn)
    return _FALLOCATE[0]
