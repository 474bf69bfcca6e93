"""One run at a time per folder: an exclusive lock on prep/ (preprocess) and results/ (infer).

The lock is a file, `<folder>/.ascend-asr.lock`, created with O_EXCL and held with fcntl.flock
while the run lasts; it names its holder (pid, host, command, start time). A second run on the
same folder is refused with that holder. A lock left behind by a killed run (kill -9: its pid is
gone on this host, or its flock is no longer held) is detected and taken over, and stderr says so.
The lock is released (the file removed) when the run ends, fails or is interrupted.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import socket
import sys
import time
from datetime import datetime, timezone

from .errors import AscendAsrError

try:  # POSIX; elsewhere the O_EXCL file alone is the lock
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

LOCK_NAME = ".ascend-asr.lock"
_HELD = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)  # what flock says when another holds it
_YOUNG_S = 2.0  # a lock file younger than this may still be being written by its holder


class RunLockedError(AscendAsrError):
    """Another run holds the folder, or the folder cannot hold a lock (a file, not writable)."""


def lock_path(folder: str) -> str:
    return os.path.join(folder, LOCK_NAME)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _read_holder(path: str) -> dict | None:
    """The holder recorded in a lock file; None when it is missing, empty or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        data = os.read(fd, 65536)
    finally:
        os.close(fd)
    try:
        holder = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def describe(holder: dict | None) -> str:
    if not holder:
        return "an unknown process (the lock file is empty or unreadable)"
    return (f"pid {holder.get('pid')} on {holder.get('host')} (`{holder.get('command')}`, "
            f"started {holder.get('started')})")


def _flock_free(path: str) -> bool | None:
    """True when nobody holds the flock of the lock file, False when someone does, None if unknown."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return False if exc.errno in _HELD else None  # None: flock unsupported here (some network file systems)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def stale_reason(path: str, holder: dict | None) -> str | None:
    """Why the lock at `path` is stale (its holder is gone), or None if it may still be held."""
    try:
        age = time.time() - os.lstat(path).st_mtime
    except OSError:
        return None
    free = _flock_free(path)
    if holder is None:
        if age > _YOUNG_S and free is not False:
            return "its lock file is empty or unreadable and nobody holds it"
        return None
    if holder.get("host") != socket.gethostname():
        return None  # cannot see another host's processes: only the user can tell
    pid = holder.get("pid")
    if not isinstance(pid, int) or not _pid_alive(pid):
        return f"pid {pid} is no longer running on this host"
    if free and age > _YOUNG_S:
        return f"pid {pid} is running but no longer holds the lock (the pid was reused)"
    return None


def _folder_ready(folder: str, what: str) -> None:
    """Create the folder; a file in its place or a folder that cannot be written is a run error."""
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise RunLockedError(f"{folder}: is a file, not a folder; give a folder (new or earlier {what}) "
                             "as the output")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise RunLockedError(f"{folder}: cannot create the {what} folder ({exc.strerror}); choose a writable "
                             "location for the output") from exc


def _command_line() -> str:
    """This process's command as the user typed it (`python -m ascend_asr.infer ...`, `ascend-asr ...`)."""
    program = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    base = os.path.basename(program)
    if base.endswith(".py") and os.path.basename(os.path.dirname(program)) == "ascend_asr":
        base = "python -m ascend_asr." + base[:-3]
    elif base.endswith(".py") or base == "-c":
        base = "python " + base
    return " ".join([base] + [shlex.quote(a) for a in sys.argv[1:]])


class FolderLock:
    """Exclusive lock of one output folder for one run; a context manager."""

    def __init__(self, folder: str, what: str = "output", command: str | None = None, log=None):
        self.folder = folder
        self.what = what
        self.path = lock_path(folder)
        self.command = command or _command_line()
        self.log = log
        self._fd = None
        self._ino = None
        self._created = False

    def acquire(self) -> "FolderLock":
        self._created = not os.path.lexists(self.folder)
        _folder_ready(self.folder, self.what)
        for _ in range(50):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o644)
            except FileExistsError:
                if self._take_over_if_stale():
                    continue
                holder = _read_holder(self.path)
                if holder is None and os.path.lexists(self.path):
                    time.sleep(0.1)  # its holder may be writing it right now
                    holder = _read_holder(self.path)
                if not os.path.lexists(self.path):
                    continue  # released meanwhile
                raise RunLockedError(
                    f"{self.folder}: in use by {describe(holder)}; wait for that run to finish or stop it, "
                    f"then rerun (if it is gone without this host seeing it, delete {self.path})")
            except OSError as exc:
                raise RunLockedError(f"{self.path}: cannot create the lock file ({exc.strerror}); "
                                     f"make {self.folder} writable or choose another output folder") from exc
            self._hold(fd)
            return self
        raise RunLockedError(f"{self.path}: could not take the lock after many tries (other runs keep taking it); "
                             "run one command at a time on this folder")

    def _hold(self, fd: int) -> None:
        if fcntl is not None:
            with contextlib.suppress(OSError):  # new inode: nobody else holds it (or no flock on this file system)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        started = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
        os.write(fd, (json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                                  "started": started}) + "\n").encode("utf-8"))
        os.fsync(fd)
        self._fd, self._ino = fd, os.fstat(fd).st_ino

    def _take_over_if_stale(self) -> bool:
        """Remove a stale lock (holding its flock while checking, so two takers cannot both win)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise RunLockedError(f"{self.path}: is a symbolic link; remove it (a lock file is never a link) "
                                     "and rerun") from exc
            return not os.path.lexists(self.path)  # vanished: try again
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno not in _HELD:
                        raise RunLockedError(f"{self.path}: cannot lock ({exc.strerror}); if no other run uses "
                                             f"{self.folder}, delete {self.path} and rerun") from exc
                    holder = _read_holder(self.path)
                    if holder and holder.get("host") == socket.gethostname() \
                            and isinstance(holder.get("pid"), int) and not _pid_alive(holder["pid"]):
                        time.sleep(0.05)  # another taker is checking it right now
                        return True
                    return False
            holder = _read_holder(self.path)
            reason = stale_reason(self.path, holder)
            if reason is None:
                return False
            try:
                if os.stat(self.path, follow_symlinks=False).st_ino != os.fstat(fd).st_ino:
                    return True  # replaced meanwhile: look again
                os.unlink(self.path)
            except FileNotFoundError:
                return True
            print(f"[ascend-asr] taking over the stale lock of {self.folder}: {reason} "
                  f"(was {describe(holder)})", file=self.log or sys.stderr)
            return True
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if os.stat(self.path, follow_symlinks=False).st_ino == self._ino:
                os.unlink(self.path)
        except OSError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None
        if self._created:  # a run that failed before writing anything leaves no empty folder behind
            try:
                os.rmdir(self.folder)
            except OSError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def check_not_locked(folder: str, what: str) -> None:
    """Refuse to read a folder that a live run is still writing (infer on a prep/ being preprocessed)."""
    path = lock_path(folder)
    if not os.path.lexists(path):
        return
    holder = _read_holder(path)
    if stale_reason(path, holder) is None:
        raise RunLockedError(f"{folder}: the {what} is still being written by {describe(holder)}; wait for it "
                             "to finish, then rerun")
