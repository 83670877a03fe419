"""Shared test fixtures.

Tests that compare against the original release's outputs read them in place
from ``../shared`` (next to the repository; override with ``DPM_SHARED``) and
skip with a reason where it is absent.
"""
import importlib
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DPM_SHARED", REPO.parent / "shared"))


def shared_path(*parts):
    """Return a path inside ``../shared``, skipping the test if it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the original release's outputs live in ../shared)")
    return path


@pytest.fixture(scope="session")
def golden():
    """Load a golden ``.npz`` by stem: ``golden('features')['f8_000034']``."""
    cache = {}

    def load(stem):
        if stem not in cache:
            cache[stem] = np.load(shared_path("golden", f"{stem}.npz"))
        return cache[stem]

    return load


@pytest.fixture(scope="session")
def models_dir():
    return shared_path("models", "voc-release3.1")


def keys_cubic(x):
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB imresize 'bicubic'), a plain reference."""
    a = abs(x)
    if a <= 1:
        return 1.5 * a ** 3 - 2.5 * a ** 2 + 1
    if a <= 2:
        return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2
    return 0.0


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def builds_of(module):
    """Full names of the builds of a compiled module that can run here: the
    portable one, then its AVX2 build where it was built and the processor
    has AVX2 (the last one is what the package uses)."""
    from dpm import _cpu

    names = [module]
    if _cpu.have_avx2():
        try:
            importlib.import_module(module + "_avx2")
            names.append(module + "_avx2")
        except ImportError:
            pass
    return names
