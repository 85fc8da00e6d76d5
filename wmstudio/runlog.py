"""The HDF5 run log: one file per experiment (schema in docs/runlog.md).

Crash safety: the writer opens the file, appends, and closes it again at every commit (each
evaluation, stage boundary and status change). Between commits the file is closed and consistent,
so a killed or crashed run leaves everything up to its last evaluation readable, and another
process (the app, ``wmstudio inspect``) can read it while the run goes on.

Hostile conditions, each ending in one ``RunLogError`` that names the file:

- an existing log is never replaced unless the caller asks (``overwrite=True``);
- one writer at a time: ``RunLogWriter`` holds an advisory lock on ``<log>.lock`` for the whole run
  (readers never take it, so they keep working while a run writes), and on a local filesystem an
  OFD lock on the log itself, so removing the lock file does not let a second writer in; every
  commit first checks that the lock file and the log are still the ones locked (``WriterLock.check``);
- a new log is written aside and renamed into place (``safe_files.atomic_output``), and neither the
  log nor its lock file is ever opened through a symbolic link;
- a commit that would not fit on the disk is refused before HDF5 writes anything (HDF5 does not
  survive a write failure halfway through a commit), so the log keeps everything committed so far
  and there is room left to mark it failed;
- every dataset carries a checksum (HDF5's fletcher32 filter; a ``crc32`` attribute on scalars),
  so damaged data is named on read instead of being used;
- a log of a newer or unknown ``format_version`` is refused with the version named.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

import wmstudio
from wmstudio import h5safe, safejson
from wmstudio.errors import OutputError, RunLogError
from wmstudio.runlog_schema import (
    RUNLOG_RULES,
    check_data_info,
    check_splits,
    check_stage_attrs,
    check_trigger,
)
from wmstudio.status import Status

FORMAT = "wmstudio-runlog"
FORMAT_VERSION = 2  # 2: checksums on every dataset; 1 (no checksums) is still read
READABLE_VERSIONS = (1, 2)
SPACE_RESERVE = 1 << 20  # bytes a data commit leaves free, so that the log can still be marked failed
STATUS_RESERVE = 64 << 10  # bytes an attribute-only commit (status, stage end) needs
TRAIN_COLUMNS = ("global_step", "epoch", "loss", "lr")
EVAL_COLUMNS = ("global_step", "epoch", "test_loss", "test_acc", "trigger_loss", "trigger_acc",
                "drift_l2", "drift_rel", "drift_cos", "p_value",
                # format 2 logs written from 0.x on: the watermark's control and collapse flags
                # (absent in older logs: read as "not recorded")
                "control_acc", "trigger_effect", "majority_share", "collapsed")


def library_versions() -> dict[str, str]:
    import torchvision

    return {"wmstudio": wmstudio.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__, "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
            "python": sys.version.split()[0], "platform": platform.platform()}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


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


def _short(exc: BaseException) -> str:
    """An exception as one short line (h5py's messages carry the whole HDF5 error stack)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EACCES, errno.EIO, errno.EROFS, errno.EDQUOT):
        text = f"{os.strerror(exc.errno)} ({text[:160]})"
    return f"{type(exc).__name__}: {text[:300]}" if not isinstance(exc, OSError) else text[:300]


_broken: dict[str, str] = {}  # logs whose write failed in this process: no HDF5 call touches them again


def _key(path: Path) -> str:
    return str(Path(os.path.abspath(path)))


@contextmanager
def _open(path: Path, mode: str) -> Iterator[h5py.File]:
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
            raise RunLogError(f"{path}: {what} ({_short(exc)})") from exc
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
                _broken[_key(path)] = f"write failed ({_short(exc)})"
            raise RunLogError(f"{path}: {what} ({_short(exc)})") from exc
        finally:
            if broken:
                _detach(f)
            else:
                try:
                    f.close()
                except Exception as exc:  # noqa: BLE001 - a failed flush on close is the commit failing
                    if not reading:
                        _broken[_key(path)] = f"write failed ({_short(exc)})"
                        _detach(f)
                    if not failed:
                        raise RunLogError(f"{path}: {'close' if reading else 'write'} failed ({_short(exc)})") from exc
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


open_log = _open  # public name: the landscape store commits to the same file the same way


def read_dataset(ds: h5py.Dataset) -> np.ndarray:
    """A dataset's values, its checksum verified: damage is a ``RunLogError`` naming file and dataset."""
    try:
        value = ds[()]
    except OSError as exc:
        raise RunLogError(f"{ds.file.filename}: dataset {ds.name} is damaged (checksum mismatch or unreadable "
                          f"data: {_short(exc)})") from exc
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


class WriterLock:
    """An advisory lock on ``<log>.lock`` held by the one process writing the log (a run or a landscape).

    ``flock`` on a side file (not the log: the per-commit locks above are flocks on the log itself);
    the file holds the owner's PID for the message a second writer gets. The lock dies with the
    process (also on ``kill -9``); a stale lock file left behind is simply taken over.

    The lock file is opened without following links (``safe_files.open_lock_file``: a link, a
    non-regular file or a hard-linked file there is refused), and a log that is a link is refused.
    On a local filesystem the writer also holds an open-file-description lock on a byte far past the
    end of the log itself for as long as it writes (``fcntl`` OFD lock, independent of the flocks),
    so a second writer cannot take the log over even when the lock file was removed. ``check()``
    (called before every commit) fails when the lock file or the log was removed or replaced.
    """

    def __init__(self, log_path: str | Path) -> None:
        self.log_path = Path(log_path)
        self.path = self.log_path.with_name(self.log_path.name + ".lock")
        self.fd: int | None = None
        self.log_fd: int | None = None

    def acquire(self) -> WriterLock:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): no protection against a second writer
            return self
        from wmstudio.safe_files import open_lock_file

        if self.log_path.is_symlink():
            raise RunLogError(f"{self.log_path}: is a symbolic link; wmstudio does not write a run log through a "
                              "link (give the path of the file it points to)")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                fd = open_lock_file(self.path)
            except OSError as exc:
                why = ("it is a symbolic link; remove it" if exc.errno == errno.ELOOP else _short(exc))
                raise RunLogError(f"{self.log_path}: cannot create its lock file {self.path.name} ({why})") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                os.close(fd)
                raise RunLogError(self._busy(holder)) from None
            try:  # the previous owner may have removed the file between our open and flock: retry on a fresh one
                same = os.fstat(fd).st_ino == os.stat(self.path, follow_symlinks=False).st_ino
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        try:
            self.hold_log()
        except BaseException:
            self.release()
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return self

    def _busy(self, holder: str = "") -> str:
        who = f"process {holder}" if holder.isdigit() else "another process"
        return (f"{self.log_path}: {who} is writing this log (lock {self.path}); wait until it finishes, or write "
                "to another file")

    def hold_log(self) -> None:
        """Hold the log file itself (see the class): a ``RunLogError`` if another writer holds it.

        Called by ``acquire`` for an existing log, and again by the writer that created the log."""
        if self.log_fd is not None:
            os.close(self.log_fd)
            self.log_fd = None
        if self.fd is None or not _local_filesystem(self.log_path):
            return
        try:
            fd = os.open(self.log_path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return  # not created yet: ``create`` calls again once it is
        except OSError as exc:
            raise RunLogError(f"{self.log_path}: cannot open for writing ({_short(exc)})") from exc
        if not _ofd_lock(fd):
            os.close(fd)
            raise RunLogError(f"{self.log_path}: another process is writing this log (its lock file {self.path.name} "
                              "was removed while it runs); wait until it finishes, or write to another file")
        self.log_fd = fd

    def check(self) -> None:
        """Fail with a ``RunLogError`` when this writer no longer owns the log: its lock file or the log was
        removed or replaced since it was locked (so that a second writer is never silently sharing it)."""
        if self.fd is None:
            return
        for fd, path, what in ((self.fd, self.path, f"its lock file {self.path.name}"),
                               (self.log_fd, self.log_path, "the log file")):
            if fd is None:
                continue
            held = os.fstat(fd)
            try:
                st = os.stat(path, follow_symlinks=False)
                same = (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)
            except OSError:
                same = False
            if not same:
                raise RunLogError(f"{self.log_path}: {what} was removed or replaced while this process wrote the "
                                  "log; stopped writing so that two writers never share it (check for another "
                                  "run, then write a new log)")

    def release(self) -> None:
        if self.log_fd is not None:
            os.close(self.log_fd)
            self.log_fd = None
        if self.fd is None:
            return
        import fcntl

        with suppress(OSError):  # only our own lock file: a replaced one belongs to another writer
            held, st = os.fstat(self.fd), os.stat(self.path, follow_symlinks=False)
            if (held.st_dev, held.st_ino) == (st.st_dev, st.st_ino):
                os.unlink(self.path)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


_OFD_BYTE = 1 << 62  # the byte a writer locks: far past the end of any log, so no reader or writer touches it
_NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "lustre", "gpfs", "glusterfs", "9p",
                        "beegfs", "afs", "fuse")


def _local_filesystem(path: Path) -> bool:
    """Whether ``path``'s folder is on a local filesystem (Linux's /proc/self/mounts); network filesystems may
    map flocks onto byte-range locks, so the OFD lock is only taken where the two stay independent."""
    try:
        folder = os.path.realpath(path.parent)
        best, kind = "", ""
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount = parts[1].replace("\\040", " ")
                if (folder == mount or folder.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
                    best, kind = mount, parts[2]
    except OSError:
        return False
    return bool(best) and not kind.startswith(_NETWORK_FILESYSTEMS)


def _ofd_lock(fd: int) -> bool:
    """Take an open-file-description write lock on ``_OFD_BYTE`` of ``fd``; False when another process holds it.

    True without a lock where the platform has no OFD locks (then only the lock file protects the log)."""
    import fcntl
    import struct

    cmd = getattr(fcntl, "F_OFD_SETLK", None)
    if cmd is None:
        return True
    request = struct.pack("@hhqqi", fcntl.F_WRLCK, os.SEEK_SET, _OFD_BYTE, 1, 0)
    request += b"\0" * (32 - len(request))  # sizeof(struct flock) on 64-bit Linux
    try:
        fcntl.fcntl(fd, cmd, request)
    except OSError as exc:  # another holder; any other failure: a filesystem without these locks, where the
        return exc.errno not in (errno.EAGAIN, errno.EACCES)  # lock file alone protects the log
    return True


def _append(group: h5py.Group, name: str, values: np.ndarray) -> None:
    values = np.asarray(values)
    if name not in group:
        group.create_dataset(name, data=values, maxshape=(None, *values.shape[1:]), fletcher32=True,
                             chunks=(max(1, min(1024, 2 ** 20 // max(1, values[0:1].nbytes))), *values.shape[1:]))
        return
    ds = group[name]
    n = ds.shape[0]
    ds.resize(n + len(values), axis=0)
    ds[n:] = values


def check_format(path: Path, attrs: Any) -> None:
    """Refuse a file that is not a run log, or one written in a format version this code cannot read."""
    if attrs.get("format") != FORMAT:
        raise RunLogError(f"{path}: not a wmstudio run log (no format='{FORMAT}' attribute)")
    version = attrs.get("format_version")
    if isinstance(version, np.generic):
        version = version.item()
    if isinstance(version, bytes):
        version = version.decode(errors="replace")
    try:
        known = int(version) in READABLE_VERSIONS and float(version) == int(version)
    except (TypeError, ValueError):
        known = False
    if not known:
        newest = max(READABLE_VERSIONS)
        hint = (f"newer than this wmstudio reads (up to {newest}); update wmstudio"
                if isinstance(version, int) and version > newest else f"readable versions: "
                f"{', '.join(map(str, READABLE_VERSIONS))}")
        raise RunLogError(f"{path}: run log format_version {version!r} is unknown: {hint}")


def refuse_existing(path: str | Path, overwrite: bool) -> None:
    """Never replace a log unless asked, nor write one through a link or over a folder: the rules of every
    output (``safe_files.check_target``), as one ``RunLogError`` naming the file."""
    from wmstudio.safe_files import check_target

    try:
        check_target(path, overwrite)
    except OutputError as exc:
        raise RunLogError(str(exc)) from exc


class RunLogWriter:
    """Appends to a run log. Every public method is one open-write-close commit.

    A writer made by ``create`` holds the log's ``WriterLock`` until ``close()``.
    """

    def __init__(self, path: str | Path, lock: WriterLock | None = None) -> None:
        self.path = Path(path)
        self.lock = lock

    @classmethod
    def create(cls, path: str | Path, config_toml: str, config_json: str, run_name: str, device: str,
               overwrite: bool = False) -> RunLogWriter:
        """A new log at ``path``, locked for this writer. An existing file is refused unless ``overwrite``."""
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunLogError(f"{p}: cannot create its folder ({_short(exc)})") from exc
        from wmstudio.safe_files import atomic_output

        lock = WriterLock(p).acquire()
        try:
            refuse_existing(p, overwrite)
            check_space(p, 0)
            with atomic_output(p, overwrite) as tmp, _open(tmp, "w") as f:  # written aside, renamed: no link
                h5safe.set_attrs(f, {"format": FORMAT, "format_version": FORMAT_VERSION, "created": now(),
                                     "status": str(Status.RUNNING), "status_message": "", "run_name": run_name,
                                     "device": device, "config_toml": config_toml, "config_json": config_json})
                for k, v in library_versions().items():
                    f.attrs[f"version_{k}"] = str(v)
                f.create_group("stages")
            lock.hold_log()
        except BaseException:
            lock.release()
            raise
        return cls(p, lock)

    def _commit(self) -> Any:
        """One append commit (``open_log(path, "a")``), after checking that this writer still owns the log."""
        if self.lock is not None:
            self.lock.check()
        return _open(self.path, "a")

    def close(self) -> None:
        """Release the writer's lock (the file itself is closed after every commit)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def write_data(self, info: dict[str, Any], splits: dict[str, np.ndarray]) -> None:
        check_space(self.path, sum(np.asarray(v).size * 8 for v in splits.values()))
        with self._commit() as f:
            g = f.require_group("data")
            h5safe.set_attrs(g, {"info_json": json.dumps(info)})
            s = g.require_group("splits")
            for k, v in splits.items():
                if k in s:
                    del s[k]
                create_dataset(s, k, np.asarray(v, dtype=np.int64))

    def write_trigger(self, images: np.ndarray, labels: np.ndarray, source_labels: np.ndarray, scheme: str,
                      seed: int, params: dict[str, Any], control_images: np.ndarray | None = None,
                      control_kind: str = "") -> None:
        extra = control_images.nbytes if control_images is not None else 0
        check_space(self.path, images.nbytes + labels.nbytes + source_labels.nbytes + extra)
        with self._commit() as f:
            if "trigger" in f:
                del f["trigger"]
            g = f.create_group("trigger")
            create_dataset(g, "images", images, compression="gzip")
            create_dataset(g, "labels", labels.astype(np.int64))
            create_dataset(g, "source_labels", source_labels.astype(np.int64))
            if control_images is not None:
                create_dataset(g, "control_images", control_images, compression="gzip")
            h5safe.set_attrs(g, {"scheme": scheme, "seed": seed, "params_json": json.dumps(params),
                                 "control_kind": control_kind if control_images is not None else ""})

    def begin_stage(self, name: str, order: int, config: dict[str, Any], epochs: int, steps_per_epoch: int,
                    layer_names: list[str], drift_reference: str) -> None:
        check_space(self.path, 0)
        with self._commit() as f:
            stages = f["stages"]
            if name in stages:
                del stages[name]
            g = stages.create_group(name)
            h5safe.set_attrs(g, {"order": order, "status": str(Status.RUNNING), "started": now(), "finished": "",
                            "message": "", "config_json": json.dumps(config), "epochs": epochs,
                            "steps_per_epoch": steps_per_epoch, "layer_names": json.dumps(layer_names),
                            "drift_reference": drift_reference})
            g.create_group("train")
            g.create_group("eval")
            g.create_group("layers")

    def append(self, stage: str, train_rows: list[tuple[float, ...]], eval_row: dict[str, float] | None = None,
               layer_l2: list[float] | None = None, layer_cos: list[float] | None = None,
               flat_weights: np.ndarray | None = None) -> None:
        """Commit buffered training steps and (optionally) one evaluation row."""
        nbytes = len(train_rows) * 8 * len(TRAIN_COLUMNS) + 8 * len(EVAL_COLUMNS) + 8 * len(layer_l2 or [])
        check_space(self.path, nbytes + (flat_weights.size * 4 if flat_weights is not None else 0))
        with self._commit() as f:
            g = f["stages"][stage]
            if train_rows:
                cols = np.asarray(train_rows, dtype=np.float64)
                for i, col in enumerate(TRAIN_COLUMNS):
                    _append(g["train"], col, cols[:, i].astype(np.int64) if col == "global_step" else cols[:, i])
            if eval_row is not None:
                for col in EVAL_COLUMNS:
                    value = eval_row.get(col, float("nan"))
                    _append(g["eval"], col, np.array([value], dtype=np.int64 if col == "global_step" else np.float64))
            if layer_l2 is not None:
                _append(g["layers"], "l2", np.asarray([layer_l2], dtype=np.float32))
                _append(g["layers"], "cos", np.asarray([layer_cos], dtype=np.float32))
            if flat_weights is not None:
                _append(g, "trajectory", flat_weights[None].astype(np.float32))

    def save_weights(self, stage: str, state_dict: dict[str, torch.Tensor | np.ndarray], partial: bool = False) -> str:
        arrays = {k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
                  for k, v in state_dict.items()}
        check_space(self.path, sum(a.nbytes for a in arrays.values()))
        with self._commit() as f:
            g = f["stages"][stage]
            if "weights" in g:
                del g["weights"]
            w = g.create_group("weights")
            w.attrs["partial"] = partial
            for k, a in arrays.items():
                create_dataset(w, k, a)
        return f"{self.path}:/stages/{stage}/weights"

    def end_stage(self, stage: str, status: str, message: str = "") -> None:
        check_space(self.path, 0, STATUS_RESERVE)
        with self._commit() as f:
            f["stages"][stage].attrs.update({"status": str(status), "finished": now(), "message": message})

    def set_stage_json(self, stage: str, key: str, value: Any) -> None:
        """A JSON attribute on a stage (e.g. the certified watermark's verification)."""
        check_space(self.path, 0, STATUS_RESERVE)
        with self._commit() as f:
            h5safe.set_attrs(f["stages"][stage], {key: json.dumps(value)})

    def set_run_json(self, key: str, value: Any) -> None:
        """A JSON attribute of the whole run (``model_json``: where the model came from)."""
        check_space(self.path, 0, STATUS_RESERVE)
        with self._commit() as f:
            h5safe.set_attrs(f, {key: json.dumps(value)})

    def set_status(self, status: str, message: str = "") -> None:
        check_space(self.path, len(message), STATUS_RESERVE)
        with self._commit() as f:
            f.attrs.update({"status": str(status), "status_message": message, "finished": now()})


# ---------------------------------------------------------------- reading

@dataclass
class StageRecord:
    name: str
    order: int
    status: str
    message: str
    config: dict[str, Any]
    train: dict[str, np.ndarray]
    eval: dict[str, np.ndarray]
    layer_names: list[str]
    layer_l2: np.ndarray
    layer_cos: np.ndarray
    has_weights: bool
    trajectory_rows: int
    drift_reference: str = ""  # what the stage's drift is measured from ("" in logs that do not say)

    def final(self, column: str) -> float:
        values = self.eval.get(column)
        return float(values[-1]) if values is not None and len(values) else float("nan")


class RunLogReader:
    """Reads a run log; safe on a log that another process is still writing.

    The file is data from whoever wrote it: every open checks it against the format (``_open``),
    JSON attributes are parsed with bounded size and depth and their checksums verified, and the
    values (labels, splits, the data record) are checked before they are returned.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise RunLogError(f"{self.path}: no such run log")
        with self._open() as f:
            check_format(self.path, f.attrs)
            self.attrs = h5safe.read_attrs(f, self.path)

    @contextmanager
    def _open(self) -> Iterator[h5py.File]:
        with _open(self.path, "r") as f:
            yield f

    def _json(self, text: Any, where: str) -> Any:
        return safejson.loads(text.decode() if isinstance(text, bytes) else text, f"{self.path}: {where}", RunLogError)

    @property
    def status(self) -> str:
        return str(self.attrs.get("status", "unknown"))

    @property
    def config_json(self) -> str:
        """The run's config as JSON text (checked to parse: a damaged attribute is a ``RunLogError``)."""
        text = str(self.attrs.get("config_json", "{}"))
        try:
            safejson.loads(text, "config_json", RunLogError)
        except RunLogError as exc:
            raise RunLogError(f"{self.path}: damaged or not a complete run log ({exc})") from None
        return text

    def has(self, name: str) -> bool:
        """Whether the log holds the group or dataset ``name`` (e.g. "trigger": a run may stop before it)."""
        with self._open() as f:
            return name in f

    def _order(self, stages: h5py.Group, name: str) -> int:
        value = stages[name].attrs.get("order", 0)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise RunLogError(f"{self.path}: /stages/{name} attribute 'order': expected a whole number, got {value!r:.60}")
        return int(value)

    def stage_names(self) -> list[str]:
        with self._open() as f:
            stages = f["stages"]
            return sorted(stages, key=lambda n: self._order(stages, n))

    def stage(self, name: str) -> StageRecord:
        with self._open() as f:
            return self._stage_in(f, name)

    def _stage_in(self, f: h5py.File, name: str, since: tuple[int, int, int] = (0, 0, 0)) -> StageRecord:
        """One stage; ``since``: (train, eval, layer) rows already held, so only the rows after them are read."""
        if name not in f["stages"]:
            raise RunLogError(f"{self.path}: no stage {name!r}; stages: {', '.join(f['stages'])}")
        g = f["stages"][name]
        a = h5safe.read_attrs(g, self.path)
        check_stage_attrs(self.path, name, a)
        config = self._json(a["config_json"], f"/stages/{name} config_json")
        layer_names = self._json(a["layer_names"], f"/stages/{name} layer_names")
        if not isinstance(config, dict) or not (isinstance(layer_names, list) and all(isinstance(x, str) for x in layer_names)):
            raise RunLogError(f"{self.path}: /stages/{name}: config_json must be a JSON object and layer_names a "
                              "JSON list of names")
        layers = g["layers"]
        t0, e0, l0 = since

        def rows(ds: h5py.Dataset, start: int) -> np.ndarray:
            return read_dataset(ds) if start == 0 else ds[start:]  # arrays are fletcher32-checked per chunk

        empty = np.zeros((0, 0), np.float32)
        return StageRecord(
            name, int(a["order"]), str(a["status"]), str(a["message"]), config,
            {k: rows(g["train"][k], t0) for k in g["train"]}, {k: rows(g["eval"][k], e0) for k in g["eval"]},
            layer_names,
            rows(layers["l2"], l0) if "l2" in layers else empty, rows(layers["cos"], l0) if "cos" in layers else empty,
            "weights" in g, int(g["trajectory"].shape[0]) if "trajectory" in g else 0,
            str(a["drift_reference"]) if "drift_reference" in a else "")

    def stages(self, since: dict[str, tuple[int, int, int]] | None = None) -> list[StageRecord]:
        """Every stage in run order, read in one opening of the file. ``since``: per stage name, the
        (train, eval, layer) rows already held; only newer rows are read (following a growing log)."""
        since = since or {}
        with self._open() as f:
            stages = f["stages"]
            names = sorted(stages, key=lambda n: self._order(stages, n))
            return [self._stage_in(f, n, since.get(n, (0, 0, 0))) for n in names]

    def weights(self, stage: str) -> dict[str, torch.Tensor]:
        with self._open() as f:
            if stage not in f["stages"] or "weights" not in f["stages"][stage]:
                raise RunLogError(f"{self.path}: stage {stage!r} has no saved weights")
            w = f["stages"][stage]["weights"]
            return {k: torch.from_numpy(np.array(read_dataset(w[k]))) for k in w}

    def weights_status(self, stage: str) -> tuple[bool, bool, str]:
        """(has weights, weights are partial: the stage was cancelled or failed, the stage's status)."""
        with self._open() as f:
            g = f["stages"][stage]
            has = "weights" in g
            partial = bool(g["weights"].attrs.get("partial", False)) if has else False
            return has, partial, str(g.attrs.get("status", "unknown"))

    def stage_json(self, stage: str, key: str) -> Any:
        with self._open() as f:
            value = h5safe.text_attr(f["stages"][stage], key, self.path)
            return self._json(value, f"/stages/{stage} {key}") if value is not None else None

    def trajectory(self, stage: str) -> np.ndarray:
        with self._open() as f:
            g = f["stages"][stage]
            return read_dataset(g["trajectory"]) if "trajectory" in g else np.zeros((0, 0), np.float32)

    def splits(self) -> dict[str, np.ndarray]:
        with self._open() as f:
            out = {k: read_dataset(v) for k, v in f["data"]["splits"].items()}
        missing = [k for k in ("owner", "attacker", "test") if k not in out]
        if missing:
            raise RunLogError(f"{self.path}: damaged or not a complete run log (/data/splits lacks {', '.join(missing)})")
        check_splits(self.path, out)
        return out

    def data_info(self) -> dict[str, Any]:
        with self._open() as f:
            return self._data_info_in(f)

    def _data_info_in(self, f: h5py.File) -> dict[str, Any]:
        text = h5safe.text_attr(f["data"], "info_json", self.path)
        if text is None:
            raise KeyError("info_json")
        return check_data_info(self.path, self._json(text, "/data info_json"))

    def trigger_set(self):  # noqa: ANN201 - a wmstudio.triggers.TriggerSet (imported lazily: triggers import torch models)
        """The stored trigger set as a TriggerSet."""
        from wmstudio.triggers import TriggerSet

        t = self.trigger()
        control = t.get("control_images")
        return TriggerSet(torch.from_numpy(t["images"]), torch.from_numpy(t["labels"]),
                          torch.from_numpy(t["source_labels"]), str(t["scheme"]), int(t["seed"]), t["params"],
                          torch.from_numpy(control) if control is not None else None,
                          str(t.get("control_kind", "")) if control is not None else "")

    def trigger(self, images: bool = True) -> dict[str, Any]:
        """The stored trigger set: images (unless ``images=False``: ``image_shape`` only), labels,
        source labels, scheme, seed and params, checked against each other and the data record."""
        with self._open() as f:
            g = f["trigger"]
            info = self._data_info_in(f) if "data" in f and "info_json" in f["data"].attrs else {}
            shape = tuple(g["images"].shape)
            expected = tuple(info.get("shape", ()))
            if expected and shape[1:] != expected:
                raise RunLogError(f"{self.path}: /trigger/images: shape {shape}, expected (N, {', '.join(map(str, expected))}) "
                                  "as the data record says")
            a = h5safe.read_attrs(g, self.path)
            seed = a.get("seed")
            if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not isinstance(
                    a.get("scheme"), str):
                raise RunLogError(f"{self.path}: /trigger: attributes scheme (text) and seed (a whole number) expected, "
                                  f"got {a.get('scheme')!r:.40} and {seed!r:.40}")
            params = self._json(a.get("params_json", "{}"), "/trigger params_json")
            labels, source = read_dataset(g["labels"]), read_dataset(g["source_labels"])
            pixels = read_dataset(g["images"]) if images else np.zeros((shape[0], 0), np.uint8)
            check_trigger(self.path, pixels, labels, source, info.get("num_classes"))
            out = {"images": pixels, "labels": labels, "source_labels": source, "scheme": a["scheme"],
                   "seed": int(seed), "params": params if isinstance(params, dict) else {}}
            if not images:
                out["image_shape"] = shape
            if "control_images" in g:  # absent in logs written before controls were recorded
                if tuple(g["control_images"].shape) != shape:
                    raise RunLogError(f"{self.path}: /trigger/control_images has shape {tuple(g['control_images'].shape)}, "
                                      f"expected the trigger images' {shape}")
                kind = a.get("control_kind", "matched")
                out["control_kind"] = kind if kind in ("paired", "matched") else "matched"
                if images:
                    out["control_images"] = read_dataset(g["control_images"])
            return out


def checkpoint_warnings(spec: str | Path) -> list[str]:
    """Warnings for using ``RUN.h5[:STAGE]`` as a checkpoint: partial weights of a cancelled or failed stage.

    Such weights load (a cancelled run's model is a legitimate starting point), but never silently.
    Anything that is not a run log reference gives no warnings.
    """
    text = str(spec)
    has_stage = ".h5:" in text or ".hdf5:" in text
    if not has_stage and not text.endswith((".h5", ".hdf5")):
        return []
    log_path, _, stage = text.rpartition(":") if has_stage else (text, "", "")
    try:
        reader = RunLogReader(Path(log_path).expanduser())
        status = {n: reader.weights_status(n) for n in reader.stage_names()}
    except (RunLogError, KeyError):
        return []  # the load itself reports a broken log
    if not stage:
        stage = next((n for n in reversed(status) if status[n][0]), "")
    has, partial, stage_status = status.get(stage, (False, False, ""))
    if not (has and partial):
        return []
    return [f"{log_path}:{stage}: partial weights: the stage ended '{stage_status}' before it finished; "
            "the model starts from where it stopped"]
