"""The allocator settings helper: idempotent, and a no-op where glibc's mallopt is absent."""
import os
import sys

import pytest

from dpm import _alloc


@pytest.fixture
def fresh(monkeypatch):
    """Run tune_malloc as if it had not been called in this process yet."""
    monkeypatch.setattr(_alloc, "_done", False)
    monkeypatch.setattr(_alloc, "_applied", False)
    for name in _alloc._ENV:
        monkeypatch.delenv(name, raising=False)
    # the environment the test sets stands for the one the process started with
    monkeypatch.setattr(_alloc, "start_environment",
                        lambda: {k: os.environ[k] for k in _alloc._ENV if k in os.environ})
    return monkeypatch


class _FakeLibc:
    def __init__(self, result=1):
        self.calls = []
        self.result = result

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return self.result


def test_applies_once(fresh):
    libc = _FakeLibc()
    fresh.setattr(_alloc, "_libc", lambda: libc)
    assert _alloc.tune_malloc() is True
    assert libc.calls == [(-3, 32 << 20), (-1, 16 << 20), (-2, 1 << 20)]
    assert _alloc.tune_malloc() is True
    assert len(libc.calls) == 3  # idempotent: only the first call sets anything


def test_absent_mallopt_is_harmless(fresh):
    fresh.setattr(_alloc, "_libc", lambda: None)
    assert _alloc.tune_malloc() is False
    assert _alloc.tune_malloc() is False


def test_refused_value(fresh):
    fresh.setattr(_alloc, "_libc", lambda: _FakeLibc(result=0))
    assert _alloc.tune_malloc() is False


def test_not_linux(fresh):
    fresh.setattr(sys, "platform", "darwin")
    assert _alloc._libc() is None
    assert _alloc.tune_malloc() is False


def test_user_environment_wins(fresh):
    libc = _FakeLibc()
    fresh.setattr(_alloc, "_libc", lambda: libc)
    fresh.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    assert _alloc.tune_malloc() is False
    assert libc.calls == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_real_libc_lookup():
    libc = _alloc._libc()
    if libc is None:
        pytest.skip("not glibc")
    assert callable(libc.mallopt)
    # The real call in this process: repeated calls agree.
    assert _alloc.tune_malloc() == _alloc.tune_malloc()


def test_a_launchers_value_is_not_the_users(fresh):
    libc = _FakeLibc()
    fresh.setattr(_alloc, "_libc", lambda: libc)
    fresh.setenv("MALLOC_TRIM_THRESHOLD_", "65536")   # what a Dask nanny sets
    assert _alloc.tune_malloc() is False              # a plain call counts it as the user's
    assert _alloc.tune_malloc({"MALLOC_TRIM_THRESHOLD_": 65536}) is True   # told whose it is: looks again
    assert len(libc.calls) == 3
    fresh.setattr(_alloc, "_done", False)
    fresh.setattr(_alloc, "_applied", False)
    fresh.setenv("MALLOC_TRIM_THRESHOLD_", "0")       # another value: the user's, kept
    assert _alloc.tune_malloc({"MALLOC_TRIM_THRESHOLD_": 65536}) is False
    assert len(libc.calls) == 3


@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="needs /proc/self/environ")
def test_a_value_set_after_start_is_not_the_users(monkeypatch):
    # glibc reads its variables at start only; a library that sets one later (a Dask LocalCluster
    # leaves MALLOC_TRIM_THRESHOLD_=65536 in its process) tunes nothing, and is not the user's
    before = _alloc.start_environment()
    if "MALLOC_TRIM_THRESHOLD_" in before:
        pytest.skip("this test process was started with MALLOC_TRIM_THRESHOLD_ set")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    assert _alloc.start_environment() == before


def test_local_workers_get_the_allocator_environment_the_process_started_with(monkeypatch):
    from dpm.execution import worker_environment

    monkeypatch.setattr(_alloc, "start_environment", lambda: {"MALLOC_TOP_PAD_": "4096"})
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")   # put there by a library, not the user
    monkeypatch.delenv("MALLOC_TOP_PAD_", raising=False)
    with worker_environment():
        assert "MALLOC_TRIM_THRESHOLD_" not in os.environ
        assert os.environ["MALLOC_TOP_PAD_"] == "4096"
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536" and "MALLOC_TOP_PAD_" not in os.environ
