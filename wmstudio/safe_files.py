"""Writing output files safely: never through a symbolic link, never over an existing file unless asked.

Every file wmstudio writes (exported models, null-model files, trigger folders, figures, reports, the
app's exports, new run logs) goes through ``atomic_output``:

- the target is checked first: a symbolic link is refused (also with ``--overwrite``: a link is never
  written through, nor silently replaced), a folder is refused, and an existing file is refused
  unless the caller passes ``overwrite`` (the error names the file and the flag);
- the file is written as ``<name>`` inside a private folder (``mkdtemp``: created atomically, mode
  0700, named at random) in the target's own folder, so nobody can put a link where the writer
  writes, whatever library writes it (torch, h5py, matplotlib, Qt);
- it then takes the target's name in one step: ``os.link`` when the target must not exist (fails
  if a file or link appeared meanwhile), ``os.replace`` when replacing is allowed (replaces a link
  itself, never its target); a failure leaves the target as it was and removes the temporary.

Files are created with the usual permissions (0666 less the umask), whatever the library.
Lock files are opened with ``O_NOFOLLOW`` (``open_lock_file``). No Qt or PyTorch here.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from wmstudio.errors import OutputError

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def check_target(path: str | Path, overwrite: bool, flag: str = "--overwrite") -> Path:
    """Refuse to write ``path`` when it is a link or a folder, or an existing file without ``overwrite``."""
    p = Path(path)
    if p.is_symlink():
        raise OutputError(f"{p}: is a symbolic link; wmstudio does not write through links (remove the link, or "
                          "write to the file it points to)")
    if p.is_dir():
        raise OutputError(f"{p}: is a folder; expected a file name")
    if p.exists() and not overwrite:
        raise OutputError(f"{p}: exists already; pass {flag} to replace it")
    return p


def check_targets(paths: Iterable[str | Path], overwrite: bool, flag: str = "--overwrite") -> None:
    """``check_target`` on every file a command is about to write, before it writes any of them."""
    for p in paths:
        check_target(p, overwrite, flag)


def existing(paths: Iterable[str | Path]) -> list[Path]:
    """The paths that exist already (files, folders or links, dangling ones too)."""
    return [Path(p) for p in paths if os.path.lexists(p)]


def make_folder(folder: str | Path) -> Path:
    """``folder`` and its parents (a folder that is a link to a folder is the user's choice and is used)."""
    f = Path(folder)
    try:
        f.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{f}: exists and is not a folder") from None
    except OSError as exc:
        raise OutputError(f"{f}: cannot create the folder ({exc.strerror or exc})") from exc
    return f


@contextmanager
def atomic_output(target: str | Path, overwrite: bool = False, flag: str = "--overwrite") -> Iterator[Path]:
    """Yield a fresh path to write ``target``'s content to; on success it becomes ``target`` in one step.

    See the module's docstring. An ``OutputError`` names ``target`` when it may not be written.
    """
    target = check_target(target, overwrite, flag)
    make_folder(target.parent)
    try:
        private = Path(tempfile.mkdtemp(prefix=f".{target.name[:64]}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise OutputError(f"{target}: cannot write in its folder ({exc.strerror or exc})") from exc
    tmp = private / target.name
    try:
        yield tmp
        if not tmp.is_file() or tmp.is_symlink():
            raise OutputError(f"{target}: the writer produced no file")
        publish(tmp, target, overwrite, flag)
    finally:
        with suppress(OSError):
            tmp.unlink()
        with suppress(OSError):
            private.rmdir()


def publish(tmp: Path, target: Path, overwrite: bool, flag: str = "--overwrite") -> None:
    """Give the finished ``tmp`` the name ``target`` in one step (see the module's docstring)."""
    check_target(target, overwrite, flag)
    if not overwrite:
        try:
            os.link(tmp, target)  # atomic and exclusive: fails if anything took the name meanwhile
            return
        except FileExistsError:
            raise OutputError(f"{target}: exists already; pass {flag} to replace it") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise OutputError(f"{target}: cannot write ({exc.strerror or exc})") from exc
            # a filesystem without hard links: replace, after the check above
    try:
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write ({exc.strerror or exc})") from exc


def create_exclusive(path: str | Path, mode: int = 0o666) -> int:
    """A new file opened for writing: ``O_CREAT | O_EXCL | O_NOFOLLOW`` (fails if anything is at ``path``)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | CLOEXEC, mode)


def write_bytes(target: str | Path, data: bytes, overwrite: bool = False, flag: str = "--overwrite") -> Path:
    """``data`` as the file ``target``, atomically (see ``atomic_output``)."""
    with atomic_output(target, overwrite, flag) as tmp:
        fd = create_exclusive(tmp)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return Path(target)


def write_text(target: str | Path, text: str, overwrite: bool = False, flag: str = "--overwrite") -> Path:
    return write_bytes(target, text.encode("utf-8"), overwrite, flag)


def copy_file(source: str | Path, target: str | Path, overwrite: bool = False) -> Path:
    """A copy of ``source`` (contents and times) as ``target``, atomically."""
    with atomic_output(target, overwrite) as tmp:
        shutil.copy2(source, tmp)
    return Path(target)


def open_lock_file(path: str | Path) -> int:
    """A lock file opened read-write: created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, or an existing one opened
    with ``O_NOFOLLOW``; a link, a non-regular file or a file with other names (hard links) is refused."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_EXCL | NOFOLLOW | CLOEXEC, 0o644)
    except FileExistsError:
        fd = os.open(p, os.O_RDWR | NOFOLLOW | CLOEXEC | getattr(os, "O_NONBLOCK", 0))  # ELOOP on a link
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        what = "not a regular file" if not stat.S_ISREG(st.st_mode) else f"a file with {st.st_nlink} names (hard links)"
        raise OSError(errno.EPERM, f"the lock file is {what}; remove it")
    return fd
