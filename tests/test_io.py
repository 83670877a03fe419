"""Atomic writes and exclusive locks (dpm._io)."""
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from dpm._io import LockedError, atomic_write, exclusive_lock


def test_atomic_write_gives_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        p = atomic_write(tmp_path / "a.bin", b"abc")
    finally:
        os.umask(mask)
    assert p.read_bytes() == b"abc"
    if os.name != "nt":
        assert stat.S_IMODE(p.stat().st_mode) == 0o644


def test_atomic_write_failure_keeps_previous_content(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"old")

    def boom(fh):
        fh.write(b"new")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(p, boom)
    assert p.read_bytes() == b"old"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["a.bin"]


def test_lock_is_exclusive_across_processes_and_names_the_holder(tmp_path):
    target = tmp_path / "out.csv"
    code = textwrap.dedent(f"""
        import sys, time
        from dpm._io import exclusive_lock
        with exclusive_lock({str(target)!r}):
            print("held", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=rf"in use by process {proc.pid}"):
            with exclusive_lock(target):
                pass
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    with exclusive_lock(target) as lock_path:  # released when the holder exits
        assert lock_path.exists()


def test_lock_released_when_holder_is_killed(tmp_path):
    target = tmp_path / "cache"
    target.mkdir()
    code = f"from dpm._io import exclusive_lock\nimport time\nwith exclusive_lock({str(target)!r}):\n" \
           "    print('held', flush=True); time.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    proc.kill()
    proc.wait(timeout=30)
    with exclusive_lock(target) as lock_path:
        assert lock_path.parent == target
