"""Writing files and folders so that a reader sees the old version or the new one, never half of one.

Files: :func:`atomic_path` gives a temporary path beside the destination that replaces it (one
``os.replace``) only when the block succeeds; :func:`write_atomic` is that for bytes or text.

Folders: a folder cannot be renamed over a non-empty one, so :func:`swap_folder` takes two renames:
the old folder is moved aside (``.NAME.XXXXXXXX.old``), the new one into its place, and only then is
the old copy deleted. If the second rename fails, the old folder is moved back. :func:`atomic_folder`
is the usual way in: a temporary folder beside the destination (``.NAME.XXXXXXXX.tmp``) that is
swapped in when the block succeeds and removed when it fails.

Leftovers: a writer killed with SIGKILL (or by the OOM killer) runs no cleanup, so every write first
cleans up after earlier ones. A temporary file or folder is stale when no process holds its lock
(every writer keeps an exclusive ``flock`` on it until it is in place, and the kernel drops the lock
when the writer dies, however it dies) and it is older than this process (so one whose writer has
created it but not yet locked it is never taken for dead). A recycled pid or another host cannot fool
a lock, as they can a pid written into the name. An old copy moved aside is locked from before the
move until it is deleted; an unlocked one means a swap died between its two renames: it is put back
when the destination is missing (the last good version), and deleted otherwise. On a filesystem
without locks nothing is taken for stale: leftovers stay, and writes still work.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _read_umask()  # read once at import: os.umask can only be read by setting it
_STARTED = time.time()  # a temp file older than this process cannot be one it is still creating
_RANDOM = r"[a-z0-9_]{8}"  # mkstemp/mkdtemp's random part (and token_hex(4)'s)


# ---------------------------------------------------------------------------------------- locks


def _lock(fd: int, *, wait: bool = True) -> bool:
    """Take an exclusive ``flock`` on ``fd``; False when it is held elsewhere or locks are unsupported."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _claim(path: Path, *, min_age: bool) -> int | None:
    """An fd holding the lock of ``path`` if no live writer holds it (and, with ``min_age``, it is
    older than this process); else None. The caller removes ``path`` and then closes the fd."""
    try:
        if min_age and os.stat(path, follow_symlinks=False).st_mtime >= _STARTED:
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    if _lock(fd, wait=False):
        return fd
    os.close(fd)
    return None


def _remove(path: Path) -> None:
    """Delete a file, link or folder; a missing one is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _siblings(dest: Path, pattern: re.Pattern[str]) -> list[Path]:
    try:
        with os.scandir(dest.parent) as listing:
            return [Path(e.path) for e in listing if pattern.fullmatch(e.name)]
    except OSError:
        return []


def fsync_path(path: Path) -> None:
    """Flush a file or a folder (its entries) to disk: opened read-only, which fsync accepts for both."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------- files


def _temp_file_name(dest: Path) -> re.Pattern[str]:
    """The names :func:`atomic_path` gives temp files of ``dest``: mkstemp's 8 random characters
    between ``.NAME.`` and the suffix (so a user's ``.NAME.backup.npy`` never matches)."""
    return re.compile(re.escape(f".{dest.name}.") + _RANDOM + re.escape(dest.suffix))


def _remove_stale_files(paths: list[Path]) -> list[Path]:
    """Delete those of ``paths`` that are plain files no live writer holds, older than this process."""
    removed: list[Path] = []
    for path in paths:
        if not path.is_file() or path.is_symlink() or (fd := _claim(path, min_age=True)) is None:
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def remove_stale_temps(dest: Path) -> list[Path]:
    """Delete the temp files of ``dest`` that killed writers left beside it; returns what was deleted."""
    return _remove_stale_files(_siblings(dest, _temp_file_name(dest)))


_ANY_TEMP_FILE = re.compile(r"\.(?P<name>.+)\." + _RANDOM + r"(?P<suffix>\.[A-Za-z0-9]+)")


def remove_stale_temps_in(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temp files that killed writers left in ``folder``, whatever file they were for.

    Why: a writer killed by SIGKILL leaves ``.X.npy.XXXXXXXX.npy``; :func:`remove_stale_temps` finds it
    only when ``X.npy`` is written again, while a user who gave up on X writes Y next, in the same folder.
    Only :func:`atomic_path`'s names whose destination has that suffix (``.NAME.SUF.XXXXXXXX.SUF``),
    unlocked and older than this process, are taken: a user's own hidden files never match both.
    """
    folder = Path(folder)
    try:
        with os.scandir(folder) as listing:
            names = [e.name for e in listing]
    except OSError:
        return []
    matches = [m for m in map(_ANY_TEMP_FILE.fullmatch, names) if m is not None]
    return _remove_stale_files(
        [folder / m.string for m in matches if m["name"].endswith(m["suffix"]) and m["name"] != m["suffix"]]
    )


@contextlib.contextmanager
def atomic_path(dest: Path, *, durable: bool = False) -> Iterator[Path]:
    """A temporary path beside ``dest`` that replaces it only if the block succeeds.

    The new file gets the mode a plain ``open`` would give it, or the replaced file's. ``durable``:
    fsync the file before the rename and the folder after it, for files that must survive a power
    cut, not only a crash (a pointer such as a checkpoint's ``latest``).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=dest.suffix, dir=dest.parent)
    try:
        _lock(fd)  # held until the rename: tells remove_stale_temps we are alive
        yield Path(tmp)
        # mkstemp makes the file 0600; give it the mode a plain open() would (or the replaced file's)
        mode = dest.stat().st_mode & 0o777 if dest.exists() else 0o666 & ~UMASK
        os.chmod(tmp, mode)
        if durable:
            fsync_path(Path(tmp))
        os.replace(tmp, dest)
        if durable:
            fsync_path(dest.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, durable: bool = False) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically: see :func:`atomic_path`."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(Path(path), durable=durable) as tmp:
        tmp.write_bytes(raw)


# ---------------------------------------------------------------------------------------- folders


def _temp_folder_name(dest: Path) -> re.Pattern[str]:
    return re.compile(re.escape(f".{dest.name}.") + _RANDOM + re.escape(".tmp"))


def _aside_name(dest: Path) -> re.Pattern[str]:
    # ``.NAME.old`` is what saving.py named its old copy before this module existed
    return re.compile(re.escape(f".{dest.name}.") + f"(?:{_RANDOM}\\.)?old")


def clean_folder_leftovers(dest: str | os.PathLike[str]) -> list[Path]:
    """Clean up after killed writers of the folder ``dest``; returns the leftovers removed.

    An old copy that a killed swap moved aside is put back when ``dest`` is missing (the newest, if
    several), and deleted otherwise; stale temporary folders are deleted.
    """
    dest = Path(dest)
    removed: list[Path] = []
    claimed: list[tuple[Path, int]] = []
    for path in _siblings(dest, _aside_name(dest)):
        if (fd := _claim(path, min_age=False)) is not None:
            claimed.append((path, fd))
    # ctime: a rename sets it, so the newest is the copy moved aside last
    claimed.sort(key=lambda item: os.stat(item[0], follow_symlinks=False).st_ctime, reverse=True)
    try:
        for path, _ in claimed:
            if not dest.exists() and not dest.is_symlink():
                with contextlib.suppress(OSError):  # if it cannot go back, keep it: it may be the last good copy
                    os.replace(path, dest)
                continue
            _remove(path)
            removed.append(path)
    finally:
        for _, fd in claimed:
            os.close(fd)
    for path in _siblings(dest, _temp_folder_name(dest)):
        if not path.is_dir() or (fd := _claim(path, min_age=True)) is None:
            continue
        try:
            _remove(path)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


def swap_folder(new: str | os.PathLike[str], dest: str | os.PathLike[str], *, durable: bool = False) -> None:
    """Put the finished folder ``new`` at ``dest`` (same filesystem), replacing what is there.

    The old ``dest`` is moved aside, kept until ``new`` is in its place, then deleted; if moving
    ``new`` in fails, the old one is moved back and the error raised, and ``new`` is left where it
    was for its owner to remove. A crash between the two renames leaves the old copy aside; the next
    write of ``dest`` puts it back (:func:`clean_folder_leftovers`). ``durable``: fsync every file
    of ``new`` first, and the parent folder after, so that even a power cut leaves a whole folder.
    """
    new, dest = Path(new), Path(dest)
    clean_folder_leftovers(dest)
    if durable:
        for root, _, names in os.walk(new):
            for name in names:
                fsync_path(Path(root) / name)
            fsync_path(Path(root))
    if not dest.exists() and not dest.is_symlink():
        os.replace(new, dest)
    else:
        fd = os.open(dest, os.O_RDONLY | os.O_NOFOLLOW) if not dest.is_symlink() else None
        try:
            if fd is not None:  # the copy stays locked aside until deleted: no cleanup takes it for a crash's
                _lock(fd, wait=False)  # never wait: if another writer holds it, it is locked all the same
            aside = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.old")
            os.replace(dest, aside)
            try:
                os.replace(new, dest)
            except BaseException:
                os.replace(aside, dest)
                raise
            _remove(aside)
        finally:
            if fd is not None:
                os.close(fd)
    if durable:
        fsync_path(dest.parent)


@contextlib.contextmanager
def temp_folder(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """A fresh, locked temporary folder beside ``dest`` (``.NAME.XXXXXXXX.tmp``), removed on exit
    unless it was moved away; one a killed writer left behind is removed by the next write of ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_folder_leftovers(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        _lock(fd)
        yield tmp
    finally:
        try:
            _remove(tmp)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_folder(dest: str | os.PathLike[str], *, mode: int | None = None, durable: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``dest`` that replaces it (:func:`swap_folder`) only if the block succeeds.

    The folder gets ``mode``, by default the mode a plain ``mkdir`` would give (mkdtemp's is 0700).
    """
    dest = Path(dest)
    with temp_folder(dest) as tmp:
        yield tmp
        os.chmod(tmp, 0o777 & ~UMASK if mode is None else mode)
        swap_folder(tmp, dest, durable=durable)
