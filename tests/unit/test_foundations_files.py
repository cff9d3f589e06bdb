"""write_atomic / atomic_path and swap_folder / atomic_folder: old or new, never half; rollback; crash leftovers."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time

import pytest

from dec2vec.foundations import files
from dec2vec.foundations.files import (
    atomic_folder,
    clean_folder_leftovers,
    swap_folder,
    temp_folder,
    write_atomic,
)

HOUR_AGO = time.time() - 3600


def make_folder(path, **contents: str):
    path.mkdir()
    for name, text in contents.items():
        (path / name).write_text(text)
    return path


def read_folder(path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(path.iterdir())}


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------------------- files


def test_write_atomic_text_and_bytes(tmp_path):
    dest = tmp_path / "sub" / "a.json"
    write_atomic(dest, "héllo\n")
    assert dest.read_bytes() == "héllo\n".encode()
    write_atomic(dest, b"\x00\x01", durable=True)
    assert dest.read_bytes() == b"\x00\x01"
    assert names(dest.parent) == ["a.json"]
    assert dest.stat().st_mode & 0o777 == 0o666 & ~files.UMASK  # not mkstemp's 0600


def test_write_atomic_keeps_the_replaced_files_mode(tmp_path):
    dest = tmp_path / "a.txt"
    write_atomic(dest, "one")
    dest.chmod(0o640)
    write_atomic(dest, "two")
    assert dest.read_text() == "two" and dest.stat().st_mode & 0o777 == 0o640


def test_atomic_path_failure_leaves_the_old_file(tmp_path):
    dest = tmp_path / "a.txt"
    write_atomic(dest, "old")
    with pytest.raises(RuntimeError), files.atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert dest.read_text() == "old" and names(tmp_path) == ["a.txt"]


def test_stale_temp_file_is_removed_live_and_young_ones_kept(tmp_path):
    dest = tmp_path / "a.txt"
    stale = tmp_path / ".a.txt.abcd1234.txt"
    live = tmp_path / ".a.txt.live1234.txt"
    young = tmp_path / ".a.txt.young123.txt"
    for p in (stale, live, young):
        p.write_text("x")
    for p in (stale, live):
        os.utime(p, (HOUR_AGO, HOUR_AGO))
    with open(live) as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a live writer holds it
        write_atomic(dest, "new")
    assert names(tmp_path) == sorted([live.name, young.name, "a.txt"])


# ----------------------------------------------------------------------------------------- folders


def test_swap_folder_into_an_empty_place_and_over_an_old_one(tmp_path):
    dest = tmp_path / "model"
    swap_folder(make_folder(tmp_path / "new1", a="1"), dest)
    assert read_folder(dest) == {"a": "1"}
    swap_folder(make_folder(tmp_path / "new2", b="2"), dest, durable=True)
    assert read_folder(dest) == {"b": "2"}
    assert names(tmp_path) == ["model"]  # neither the new folders nor the old copy are left


def test_swap_folder_failure_midway_rolls_back(tmp_path, monkeypatch):
    """The old folder is moved aside, then moving the new one in fails: the old one is put back."""
    dest = make_folder(tmp_path / "model", a="old")
    new = make_folder(tmp_path / "new", a="new")
    real = os.replace

    def failing(src, dst):
        if os.fspath(src) == os.fspath(new):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", failing)
    with pytest.raises(OSError, match="No space"):
        swap_folder(new, dest)
    assert read_folder(dest) == {"a": "old"}  # intact, in its place
    assert names(tmp_path) == ["model", "new"]  # no old copy aside; ``new`` is its owner's to remove


def test_atomic_folder_failure_keeps_the_old_folder_and_removes_the_temp(tmp_path):
    dest = tmp_path / "model"
    with atomic_folder(dest) as tmp:
        (tmp / "a").write_text("old")
    assert dest.stat().st_mode & 0o777 == 0o777 & ~files.UMASK  # not mkdtemp's 0700
    with pytest.raises(RuntimeError), atomic_folder(dest) as tmp:
        (tmp / "a").write_text("half")
        raise RuntimeError("killed")
    assert read_folder(dest) == {"a": "old"} and names(tmp_path) == ["model"]
    with atomic_folder(dest, mode=0o750) as tmp:
        (tmp / "b").write_text("new")
    assert read_folder(dest) == {"b": "new"} and dest.stat().st_mode & 0o777 == 0o750


def test_leftover_of_a_swap_killed_between_its_renames_is_put_back(tmp_path):
    """The destination is gone and its old copy sits aside, unlocked: the next write restores it first."""
    dest = tmp_path / "model"
    make_folder(tmp_path / ".model.abcd1234.old", a="last good")
    assert clean_folder_leftovers(dest) == []
    assert read_folder(dest) == {"a": "last good"} and names(tmp_path) == ["model"]
    make_folder(tmp_path / ".model.efgh5678.old", a="older")  # the destination exists: a plain leftover
    make_folder(tmp_path / ".model.old", a="saving.py's old name")
    assert sorted(p.name for p in clean_folder_leftovers(dest)) == [".model.efgh5678.old", ".model.old"]
    assert read_folder(dest) == {"a": "last good"} and names(tmp_path) == ["model"]


def test_stale_temp_folders_go_live_and_young_ones_stay(tmp_path):
    dest = tmp_path / "model"
    stale = make_folder(tmp_path / ".model.abcd1234.tmp", a="x")
    live = make_folder(tmp_path / ".model.live1234.tmp", a="x")
    young = make_folder(tmp_path / ".model.young123.tmp", a="x")
    lookalike = make_folder(tmp_path / ".model.backup", a="x")
    for p in (stale, live, lookalike):
        os.utime(p, (HOUR_AGO, HOUR_AGO))
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a writer still at work
        with atomic_folder(dest) as tmp:
            (tmp / "a").write_text("new")
    finally:
        os.close(fd)
    assert names(tmp_path) == sorted(["model", live.name, young.name, lookalike.name])


def test_temp_folder_is_removed_on_exit(tmp_path):
    with temp_folder(tmp_path / "model") as work:
        (work / "big.bin").write_bytes(b"0" * 10)
        assert work.name.startswith(".model.") and work.name.endswith(".tmp")
    assert names(tmp_path) == []


KILLED_SWAP = """
import os, sys, time
from pathlib import Path
from dec2vec.foundations import files

dest, new = Path(sys.argv[1]), Path(sys.argv[2])
real = os.replace

def slow(src, dst):
    if Path(src) == new:
        print("aside", flush=True)
        time.sleep(120)  # killed here: the old copy is aside, the new one not yet in
    return real(src, dst)

files.os.replace = slow
files.swap_folder(new, dest)
"""


@pytest.mark.slow
def test_swap_killed_between_its_renames(tmp_path):
    """kill -9 between the two renames: while the writer lives its old copy is left alone (locked);
    once it is dead the next write puts the old folder back, then replaces it."""
    dest = make_folder(tmp_path / "model", a="old")
    new = make_folder(tmp_path / "new", a="new")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SWAP, str(dest), str(new)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "aside\n"
        (aside,) = [p for p in tmp_path.iterdir() if p.name.endswith(".old")]
        assert not dest.exists()
        assert clean_folder_leftovers(dest) == [] and aside.exists() and not dest.exists()  # a live swap's
    finally:
        proc.kill()
        proc.wait()
    assert clean_folder_leftovers(dest) == []
    assert read_folder(dest) == {"a": "old"}
    with atomic_folder(dest) as tmp:
        (tmp / "a").write_text("newer")
    assert read_folder(dest) == {"a": "newer"} and names(tmp_path) == ["model", "new"]
