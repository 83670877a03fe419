"""The same training command gives the same model file whatever BLAS kernel, process count or build runs it.

Each run is the whole training schedule in a fresh process on a small
synthetic VOC folder (24 positives, 24 negative images, small example caches,
500 learner updates per call), with the
environment changed in ways that do not touch the project's own code but do
change how BLAS and numpy compute:

* ``OPENBLAS_CORETYPE`` unset, ``Haswell``, ``Sandybridge``, ``Prescott``:
  OpenBLAS's kernel families (SciPy's and numpy's bundled copies read it);
  their GEMMs round differently, which before training used its own
  convolution kernel gave a different model file for each;
* ``-j 1`` and ``-j 2``;
* ``DPM_NO_AVX2=1`` (the portable builds of the project's kernels) together
  with ``NPY_DISABLE_CPU_FEATURES`` (numpy without its AVX-512 loops, whose
  ``exp``/``log`` round differently), as on a processor without them.
"""
import hashlib
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO, make_voc

UPDATES = 500
N_POS = N_NEG = 24

# (name, environment changes, jobs)
VARIANTS = [
    ("default", {}, 1),
    ("Haswell", {"OPENBLAS_CORETYPE": "Haswell"}, 1),
    ("Sandybridge -j 2", {"OPENBLAS_CORETYPE": "Sandybridge"}, 2),
    ("Prescott", {"OPENBLAS_CORETYPE": "Prescott"}, 1),
    ("portable builds -j 2", {"DPM_NO_AVX2": "1", "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL"}, 2),
]

CORENAME = """
import ctypes, sys
from dpm.blas import openblas_path
if openblas_path() is None:
    sys.exit(3)
lib = ctypes.CDLL(openblas_path())
for name in ("scipy_openblas_get_corename", "openblas_get_corename64_", "openblas_get_corename"):
    fn = getattr(lib, name, None)
    if fn is not None:
        fn.restype = ctypes.c_char_p
        print(fn().decode())
        break
else:
    sys.exit(3)
"""


# Trains, then prints a digest of the score maps training computes (latent
# search's, with the trained model, on two of the images): on this tiny data
# a last-bit difference in a score rarely changes the model, so the scores
# are compared too.
TRAIN = """
import hashlib, sys
from pathlib import Path
from dpm.detection import score_levels
from dpm.features import feature_pyramid
from dpm.image import read_image
from dpm.model import load_model
from dpm.training import TrainConfig
from dpm.training.schedule import train
from voc import training_data
voc, out, jobs, updates = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
config = TrainConfig(stage1_cache_bytes=2 ** 21, parts_cache_bytes=2 ** 22, num_hard_negatives=3)
if __name__ == "__main__":
    train(training_data(voc, "person"), "person", out=out, config=config, max_updates=updates, n_jobs=jobs, progress=False)
    model, digest = load_model(out), hashlib.sha256()
    for name in ("pos00.jpg", "neg00.jpg"):
        pyramid = feature_pyramid(read_image(voc / "JPEGImages" / name), model.sbin, config.latent_interval)
        for ls in score_levels(pyramid, model, exact_order=True, keep_features=False):
            for score in ls.scores:
                digest.update(score.tobytes())
    print(digest.hexdigest())
"""


def _env(changes):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "DPM_NO_AVX2", "NPY_DISABLE_CPU_FEATURES")}
    env.update(changes, PYTHONPATH=str(REPO))
    return env


def _corename(changes):
    """The OpenBLAS kernel family a process with these changes runs, or None if unknown."""
    r = subprocess.run([sys.executable, "-c", CORENAME], capture_output=True, text=True,
                       env=_env(changes), cwd=str(REPO), timeout=60)
    return r.stdout.strip() or None if r.returncode == 0 else None


@pytest.fixture(scope="module")
def kernel_families():
    return {name: _corename(changes) for name, changes, _ in VARIANTS}


def test_blas_kernel_families_are_really_different(kernel_families):
    """The check below means something only if OpenBLAS ran different kernels."""
    families = {f for f in kernel_families.values() if f}
    if len(families) < 2:
        pytest.skip(f"this OpenBLAS ran one kernel family for every OPENBLAS_CORETYPE: {kernel_families}")
    assert len(families) >= 3, kernel_families


def _accepted(changes):
    """``changes`` without a NPY_DISABLE_CPU_FEATURES value this numpy refuses (older
    numpy versions name the AVX-512 groups differently and fail on import)."""
    if "NPY_DISABLE_CPU_FEATURES" not in changes:
        return changes
    r = subprocess.run([sys.executable, "-c", "import numpy"], capture_output=True, env=_env(changes),
                       timeout=60)
    return changes if r.returncode == 0 else {k: v for k, v in changes.items() if k != "NPY_DISABLE_CPU_FEATURES"}


def test_training_gives_identical_bytes_across_blas_jobs_and_builds(tmp_path, kernel_families):
    voc = make_voc(tmp_path / "VOC", n_pos=N_POS, n_neg=N_NEG)
    script = tmp_path / "train_small.py"
    script.write_text(textwrap.dedent(TRAIN))
    digests = {}
    for i, (name, changes, jobs) in enumerate(VARIANTS):
        out = tmp_path / f"model{i}.npz"
        r = subprocess.run([sys.executable, str(script), str(voc), str(out), str(jobs), str(UPDATES)],
                           capture_output=True, text=True, env=_env(_accepted(changes)), cwd=str(tmp_path),
                           timeout=300)
        assert r.returncode == 0, f"{name}: {r.stderr[-2000:]}"
        digests[f"{name} (OpenBLAS {kernel_families[name]})"] = (hashlib.sha256(out.read_bytes()).hexdigest(),
                                                                 r.stdout.strip())
    assert len(set(digests.values())) == 1, digests


def test_no_avx2_environment_chooses_the_portable_builds():
    script = ("import sys; from dpm import _cpu, convolve, learn; import dpm.features.kernels; "
              "kernels = sys.modules['dpm.features.kernels']; "
              "print(_cpu.have_avx2(), convolve._convolve.__name__, kernels.hog_kernels().__name__)")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       env=_env({"DPM_NO_AVX2": "1"}), cwd=str(REPO), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "dpm._convolve", "dpm.features._hog"]
