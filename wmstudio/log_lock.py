"""One writer per run log: ``WriterLock``, an advisory lock (and on a local filesystem an OFD lock) held for a whole run."""

from __future__ import annotations

import errno
import os
from contextlib import suppress
from pathlib import Path

from wmstudio.errors import RunLogError
from wmstudio.log_file import short_error


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
                why = ("it is a symbolic link; remove it" if exc.errno == errno.ELOOP else short_error(exc))
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
            raise RunLogError(f"{self.log_path}: cannot open for writing ({short_error(exc)})") from exc
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
