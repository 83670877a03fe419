"""Fuzz model files and images in a child process with a memory cap (driver: tests/fuzz_files.py).

The default run is short; ``pytest -m slow`` runs many more examples.
"""
from pathlib import Path

import pytest

import hostile

DRIVER = Path(__file__).with_name("fuzz_files.py")
CODE = "import runpy\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')"
BUDGET_MIB = 400        # peak resident memory of the whole child, imports included


def run_fuzz(examples, mat_model=None):
    args = [DRIVER, examples] + ([mat_model] if mat_model else [])
    # The fuzzed PNG headers declare up to 2^40 pixels; with the default pixel limit (150 million)
    # an accepted one would decode to 450 MB, over this test's budget, so the child keeps the
    # limit at 50 million: what is fuzzed is that every size is refused or read within it.
    rc, out, err, peak = hostile.run_measured(CODE, *args, address_space=3 * hostile.GiB, timeout=3600,
                                              env={"DPM_MAX_PIXELS": "50000000"})
    assert rc == 0, f"{err[:3000]}\n...\n{err[-1500:]}\n{out}"
    assert all(line.endswith(": ok") for line in out) and len(out) == 6 + bool(mat_model)
    assert peak < BUDGET_MIB, f"peak memory {peak:.0f} MiB"


def test_fuzz_model_files_and_images(models_dir):
    run_fuzz(60, models_dir / "INRIA" / "inria_final.mat")


@pytest.mark.slow
def test_fuzz_model_files_and_images_many(models_dir):
    run_fuzz(600, models_dir / "INRIA" / "inria_final.mat")
