"""Opening a run log for one commit or one read, and its checksummed datasets (``wmstudio.runlog`` says why).

Every open goes through ``open_log``: the file is checked as untrusted data before use, a commit holds
an exclusive flock and a read a shared one, and a file whose write failed halfway is never touched by
HDF5 again in this process.
"""

from __future__ import annotations

import errno
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from wmstudio import h5safe
from wmstudio.errors import RunLogError
from wmstudio.runlog_schema import (
    RUNLOG_RULES,
)


@contextmanager
def _advisory_lock(path: Path, exclusive: bool) -> Iterator[None]:
    """An flock on the log while it is open: commits are exclusive, reads shared.

    HDF5's own file locking is off (``locking=False``) so that a reader never fails because a
    writer exists; this lock only keeps a reader from opening the file in the middle of a commit
    (e.g. landscape workers reading the log while their driver writes points into it).
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): commits are short, readers retry
        yield
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield  # not created yet: nobody can be reading it
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def short_error(exc: BaseException) -> str:
    """An exception as one short line (h5py's messages carry the whole HDF5 error stack)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EACCES, errno.EIO, errno.EROFS, errno.EDQUOT):
        text = f"{os.strerror(exc.errno)} ({text[:160]})"
    return f"{type(exc).__name__}: {text[:300]}" if not isinstance(exc, OSError) else text[:300]


_broken: dict[str, str] = {}  # logs whose write failed in this process: no HDF5 call touches them again


def _key(path: Path) -> str:
    return str(Path(os.path.abspath(path)))


@contextmanager
def open_log(path: Path, mode: str) -> Iterator[h5py.File]:
    """One commit or read: open, use, close. Every failure inside becomes one ``RunLogError`` naming the file.

    The file is checked as untrusted data first (``wmstudio.h5safe.check_file`` with the run log's
    schema): links, external storage, virtual datasets and shapes the format does not allow are
    refused before anything is read or written. After HDF5 failed halfway through a write (no room
    left on the disk, or an error inside HDF5) or on the flush at close, its state for the file
    cannot be trusted: the file is detached without a flush (``_detach``), and every later open of
    it in this process is refused without calling HDF5 (a flush or a reopen of such a file has
    crashed the process).
    """
    reading = mode == "r"
    if _key(path) in _broken:
        raise RunLogError(f"{path}: {_broken[_key(path)]}; nothing more is written to it (what was committed "
                          "before that failure is kept)")
    with _advisory_lock(path, exclusive=not reading):
        try:
            f = h5py.File(path, mode, locking=False)
        except OSError as exc:
            what = "cannot open as HDF5" if reading or path.exists() else "cannot create"
            raise RunLogError(f"{path}: {what} ({short_error(exc)})") from exc
        failed = broken = False
        try:
            if mode != "w":
                h5safe.check_file(f, path, RUNLOG_RULES)
            yield f
        except RunLogError:
            failed = True
            raise
        except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError) as exc:
            failed = True
            broken = not reading and (isinstance(exc, RuntimeError) or (  # HDF5 failed inside a write
                isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)))
            what = "damaged or not a complete run log" if reading else "write failed"
            if broken:
                _broken[_key(path)] = f"write failed ({short_error(exc)})"
            raise RunLogError(f"{path}: {what} ({short_error(exc)})") from exc
        finally:
            if broken:
                _detach(f)
            else:
                try:
                    f.close()
                except Exception as exc:  # noqa: BLE001 - a failed flush on close is the commit failing
                    if not reading:
                        _broken[_key(path)] = f"write failed ({short_error(exc)})"
                        _detach(f)
                    if not failed:
                        raise RunLogError(f"{path}: {'close' if reading else 'write'} failed ({short_error(exc)})") from exc
                else:
                    if not reading:
                        h5safe.mark_checked(path, RUNLOG_RULES)


def _detach(f: h5py.File) -> None:
    """Close a file whose write failed halfway without writing anything more into it.

    HDF5 keeps such a file open after a failed flush and flushes its half-written metadata again
    when the process exits, which crashed the process (exit 139, the disk-full race). The file's
    descriptor is pointed at the null device first, so the close that frees HDF5's state writes
    nowhere; the log keeps what reached the disk before the failure.
    """
    with suppress(Exception):
        fd = f.id.get_vfd_handle()
        if isinstance(fd, int) and fd > 2:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, fd)
            os.close(null)
    _detached.append(f)  # not closed (a close crashed the process): HDF5 frees it at exit


_detached: list[h5py.File] = []




def read_dataset(ds: h5py.Dataset) -> np.ndarray:
    """A dataset's values, its checksum verified: damage is a ``RunLogError`` naming file and dataset."""
    try:
        value = ds[()]
    except OSError as exc:
        raise RunLogError(f"{ds.file.filename}: dataset {ds.name} is damaged (checksum mismatch or unreadable "
                          f"data: {short_error(exc)})") from exc
    crc = ds.attrs.get("crc32")
    if crc is not None and zlib.crc32(np.ascontiguousarray(value).tobytes()) != int(crc):
        raise RunLogError(f"{ds.file.filename}: dataset {ds.name} is damaged (crc32 mismatch)")
    return value


def create_dataset(group: h5py.Group, name: str, data: np.ndarray, **kwargs: Any) -> h5py.Dataset:
    """A dataset with a checksum: fletcher32 (chunked) for arrays, a crc32 attribute for scalars."""
    data = np.asarray(data)
    if data.ndim == 0:
        ds = group.create_dataset(name, data=data)
        ds.attrs["crc32"] = zlib.crc32(np.ascontiguousarray(data).tobytes())
        return ds
    return group.create_dataset(name, data=data, fletcher32=True, **kwargs)
