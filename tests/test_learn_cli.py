"""Tests of the ``dpm-learn`` command (a drop-in for voc-release3.1's ``learn``)."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from conftest import sigint_default
from dpm import learnfiles as lf
from dpm.cli.learn import DEFAULT_SEED, main
from dpm.learn import BlockLayout, ExampleSet, fit_lsvm

REPO = Path(__file__).resolve().parents[1]
SIZES = [1, 6, 4]


def _env():
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _write_set(tmp_path, rng, n=60, dup=True, dim=6):
    """Write hdr/dat/mod/lob of a small latent problem; return the paths, examples and layout."""
    sizes = [1, dim, 4]
    ex = ExampleSet(sizes)
    for k in range(n):
        y = 1 if k % 2 else -1
        for m in range(1 + k % 2):
            ex.append([y, k + 1, 0, 0, 0], [(0, [1.0]), (1, rng.normal(size=dim) + 0.5 * y),
                                            (2, -rng.random(4))])
    if dup:
        lab, blocks = ex.example(3)
        ex.append(lab, [(b, v.copy()) for b, v in blocks])
    layout = BlockLayout(sizes, [0, 1, 10], [20, 1, 0.1], np.r_[-100.0, [-100.0] * dim, 0.01, -100, 0.01, -100])
    p = {k: tmp_path / f"t.{k}" for k in ("hdr", "dat", "mod", "inf", "lob")}
    lf.write_hdr(p["hdr"], len(ex), sizes, layout.regmult, layout.learnmult)
    ex.write_dat(p["dat"])
    lf.write_vector(p["mod"], np.zeros(layout.num_weights))
    lf.write_vector(p["lob"], layout.lower_bounds)
    return p, ex, layout


def _args(p, C="0.0100", J="1.0000"):
    return [C, J, str(p["hdr"]), str(p["dat"]), str(p["mod"]), str(p["inf"]), str(p["lob"])]


def test_cli_writes_mod_and_inf_like_fit_lsvm(tmp_path, rng, capsys):
    p, ex, layout = _write_set(tmp_path, rng)
    init = rng.normal(size=layout.num_weights) * 0.01
    lf.write_vector(p["mod"], init)         # learn starts from the .mod it is given
    assert main(_args(p) + ["--iter", "20000", "-q"]) == 0
    ref = fit_lsvm(ex, layout, 0.01, 1.0, seed=DEFAULT_SEED, max_updates=20_000, init=init)
    w = lf.read_vector(p["mod"], layout.num_weights)
    assert w.tobytes() == ref.w.tobytes()
    lines = p["inf"].read_text().splitlines()
    assert len(lines) == len(ex)
    assert lines[0] == "%d\t%f\t%d" % (ex.labels[0], ref.scores[0], 1)
    labels, scores, unique = lf.read_inf(p["inf"])
    assert_array_equal(labels, ex.labels)
    assert_allclose(scores, ref.scores, atol=5e-7)
    assert unique.sum() == len(ex) - 1 and unique[-1] == 0      # the planted copy
    assert np.all(w >= layout.lower_bounds)
    assert capsys.readouterr().err == ""


def test_cli_seed_option_and_logging(tmp_path, rng, capsys):
    p, ex, layout = _write_set(tmp_path, rng)
    assert main(_args(p) + ["--iter", "5000", "--seed", "7"]) == 0
    w7 = lf.read_vector(p["mod"], layout.num_weights)
    err = capsys.readouterr().err
    assert "91 examples with label size 5 and 3 blocks" in err
    assert "91 examples, 90 unique, 60 collapsed" in err
    lf.write_vector(p["mod"], np.zeros(layout.num_weights))
    assert main(_args(p) + ["--iter", "5000", "--seed", "8", "-q"]) == 0
    assert not np.array_equal(w7, lf.read_vector(p["mod"], layout.num_weights))


@pytest.mark.parametrize("argv_len", [0, 3, 6, 8])
def test_cli_wrong_argument_count_exits_1(tmp_path, rng, capsys, argv_len):
    p, _, _ = _write_set(tmp_path, rng, n=4)
    args = (_args(p) + ["extra"])[:argv_len]
    assert main(args) == 1
    assert "usage" in capsys.readouterr().err


def _expect_error(p, capsys, match, C="0.01", J="1"):
    mod_before = p["mod"].read_bytes()
    assert main(_args(p, C, J) + ["-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dpm-learn: error: "), err
    assert match in err, err
    assert p["mod"].read_bytes() == mod_before      # nothing written on failure
    return err


def test_cli_bad_files_exit_1_with_one_line(tmp_path, rng, capsys):
    p, ex, layout = _write_set(tmp_path, rng, n=6)
    good_dat = p["dat"].read_bytes()
    # truncated .dat
    p["dat"].write_bytes(good_dat[:-10])
    _expect_error(p, capsys, "truncated .dat")
    # block label out of range (first block label float of example 0 is at byte 28)
    bad = bytearray(good_dat)
    bad[28:32] = np.float32(9).tobytes()
    p["dat"].write_bytes(bytes(bad))
    _expect_error(p, capsys, "example 0 (byte offset 0): block label 9 at byte offset 28 is not an integer in 1..3")
    # NaN feature
    bad = bytearray(good_dat)
    bad[40:44] = np.float32(np.nan).tobytes()
    p["dat"].write_bytes(bytes(bad))
    _expect_error(p, capsys, "example 0: NaN or infinite value at byte offset 40")
    # a label other than +1/-1
    bad = bytearray(good_dat)
    bad[0:4] = np.int32(3).tobytes()
    p["dat"].write_bytes(bytes(bad))
    _expect_error(p, capsys, "example 0 (byte offset 0): label 3 is not +1 or -1")
    p["dat"].write_bytes(good_dat)
    # header announcing more examples than the .dat holds
    lf.write_hdr(p["hdr"], len(ex) + 1, SIZES, layout.regmult, layout.learnmult)
    _expect_error(p, capsys, f"example {len(ex)} (byte offset {len(good_dat)}): truncated")
    # ... or fewer
    lf.write_hdr(p["hdr"], len(ex) - 1, SIZES, layout.regmult, layout.learnmult)
    _expect_error(p, capsys, "bytes left at byte offset")
    # an empty example set
    lf.write_hdr(p["hdr"], 0, SIZES, layout.regmult, layout.learnmult)
    _expect_error(p, capsys, "0 examples")
    lf.write_hdr(p["hdr"], len(ex), SIZES, layout.regmult, layout.learnmult)
    # lower bounds of the wrong size
    lf.write_vector(p["lob"], layout.lower_bounds[:-1])
    _expect_error(p, capsys, "lower bounds file of the wrong size")
    lf.write_vector(p["lob"], layout.lower_bounds)
    # weights of the wrong size
    good_mod = p["mod"].read_bytes()
    p["mod"].write_bytes(good_mod + b"\0" * 8)
    _expect_error(p, capsys, "weights file of the wrong size")
    p["mod"].write_bytes(good_mod)
    # a missing file, bad numbers
    p["lob"].unlink()
    _expect_error(p, capsys, "No such file")
    lf.write_vector(p["lob"], layout.lower_bounds)
    _expect_error(p, capsys, "C must be a positive", C="-1")
    assert main(_args(p, C="abc") + ["-q"]) == 1
    # and the good files still work
    assert main(_args(p) + ["--iter", "100", "-q"]) == 0


def test_cli_stage1_short(tmp_path):
    from conftest import shared_path
    d = shared_path("golden", "learn-stage1")
    p = {}
    for k in ("hdr", "dat", "mod", "lob"):
        p[k] = tmp_path / f"person_stage1.{k}"
        shutil.copyfile(d / f"person_stage1.{k}", p[k])
    p["inf"] = tmp_path / "person_stage1.inf"
    assert main(_args(p, "0.0020", "1.0000") + ["--iter", "200000", "-q"]) == 0
    runs = np.load(d / "learn_runs.npz")
    labels, scores, unique = lf.read_inf(p["inf"])
    assert_array_equal(labels, runs["inf_label"])
    assert_array_equal(unique, runs["inf_unique"])
    assert np.corrcoef(scores, runs["inf_score_run1"])[0, 1] > 0.99
    assert not np.array_equal(lf.read_vector(p["mod"], 1210), np.zeros(1210))


def test_cli_script_help_runs():
    out = subprocess.run([sys.executable, str(REPO / "bin" / "dpm-learn"), "--help"], capture_output=True,
                         text=True, env=_env(), timeout=60)
    assert out.returncode == 0
    assert "C J hdr dat mod inf lob" in " ".join(out.stdout.split())


def test_cli_ctrl_c_exits_130(tmp_path, rng):
    p, _, _ = _write_set(tmp_path, rng, n=300, dim=3000)
    proc = subprocess.Popen([sys.executable, str(REPO / "bin" / "dpm-learn")] + _args(p) + ["--iter", str(10**10)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            preexec_fn=sigint_default)
    try:
        # wait until the learner runs (it logs the collapse just before the loop)
        deadline = time.time() + 30
        seen = ""
        while "collapsed" not in seen and time.time() < deadline:
            seen += proc.stderr.readline()
        assert "collapsed" in seen
        time.sleep(0.5)
        assert proc.poll() is None
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        elapsed = time.time() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "dpm-learn: interrupted" in err and "Traceback" not in err
    assert elapsed < 3.0
    assert not p["inf"].exists()
