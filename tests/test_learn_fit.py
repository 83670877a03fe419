"""fit_lsvm's behaviour, ExampleSet, bad input and Ctrl+C (dpm.learn), with each build of the learner."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from conftest import sigint_default
from dpm.learn import BlockLayout, ExampleSet, StoppingRule, fit_lsvm, lsvm_objective
from learn_reference import dense, ref_groups

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("learner_build")


# --------------------------------------------------------------------------------------------
# fit_lsvm behaviour
# --------------------------------------------------------------------------------------------

def test_fit_same_seed_identical_other_seed_different(problem):
    ex, layout = problem
    a = fit_lsvm(ex, layout, 0.05, 1.0, seed=11, max_updates=20_000)
    b = fit_lsvm(ex, layout, 0.05, 1.0, seed=11, max_updates=20_000)
    c = fit_lsvm(ex, layout, 0.05, 1.0, seed=12, max_updates=20_000)
    assert a.w.tobytes() == b.w.tobytes()
    assert a.scores.tobytes() == b.scores.tobytes()
    assert not np.array_equal(a.w, c.w)
    assert abs(a.objective - c.objective) < 0.05 * a.objective


def test_fit_result_fields(problem):
    ex, layout = problem
    res = fit_lsvm(ex, layout, 0.05, 1.0, seed=1, max_updates=5_000, history_every=1_000)
    # learn.cc finishes the epoch in which it reaches ITER
    assert 5_000 <= res.updates < 5_000 + res.num_groups
    assert res.epochs >= 5_000 // res.num_groups
    unique, groups = ref_groups(ex)
    assert_array_equal(res.unique, unique)
    assert res.num_unique == unique.sum() and res.num_groups == len(groups)
    assert_allclose(res.scores, dense(ex, layout.sizes) @ res.w, rtol=1e-10, atol=1e-12)
    obj = lsvm_objective(ex, layout, 0.05, 1.0, res.w)
    assert_allclose([res.objective, res.regularizer, res.loss_pos, res.loss_neg], obj, rtol=1e-12)
    assert res.history.size == res.history_updates.size
    assert_array_equal(res.history_updates[:-1], np.arange(1000, res.updates + 1, 1000))
    assert res.history_updates[-1] == res.updates and res.history[-1] == res.objective
    assert [b.size for b in res.blocks()] == list(layout.sizes)
    assert_array_equal(np.concatenate(res.blocks()), res.w)
    assert res.seconds > 0 and res.seed == 1 and not res.stopped_early


def test_fit_zero_updates_returns_init(problem, rng):
    ex, layout = problem
    init = rng.normal(size=layout.num_weights)
    res = fit_lsvm(ex, layout, 0.05, 1.0, seed=1, max_updates=0, init=init)
    assert res.updates == 0 and res.epochs == 0
    assert_array_equal(res.w, init)


def test_fit_stopping_rule(problem):
    ex, layout = problem
    rule = StoppingRule(every=500, tol=1e-2, patience=2)
    res = fit_lsvm(ex, layout, 0.05, 1.0, seed=4, max_updates=10**7, stop=rule)
    assert res.stopped_early
    assert res.updates < 10**7
    h = res.history[:-1]
    rel = np.abs(np.diff(h)) / h[1:]
    assert np.all(rel[-(rule.patience + 1):] <= rule.tol)
    assert np.all(res.w >= layout.lower_bounds)
    off = fit_lsvm(ex, layout, 0.05, 1.0, seed=4, max_updates=3_000)
    assert not off.stopped_early


def test_fit_accepts_model_blocks(problem):
    from dpm.model import Block
    ex, layout = problem
    off = layout.offsets
    blocks = [Block(size=int(s), regmult=float(r), learnmult=float(m), lower_bounds=layout.lower_bounds[a:b])
              for s, r, m, a, b in zip(layout.sizes, layout.regmult, layout.learnmult, off[:-1], off[1:])]
    a = fit_lsvm(ex, blocks, 0.05, 1.0, seed=2, max_updates=2_000)
    b = fit_lsvm(ex, layout, 0.05, 1.0, seed=2, max_updates=2_000)
    c = fit_lsvm(ex, (layout.sizes, layout.regmult, layout.learnmult, layout.lower_bounds), 0.05, 1.0,
                 seed=2, max_updates=2_000)
    assert a.w.tobytes() == b.w.tobytes() == c.w.tobytes()


def test_fit_progress_callback(problem):
    ex, layout = problem
    calls = []
    fit_lsvm(ex, layout, 0.05, 1.0, seed=2, max_updates=2_000, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1][0] >= 2_000 and calls[-1][1] == 2_000


# --------------------------------------------------------------------------------------------
# ExampleSet
# --------------------------------------------------------------------------------------------

def test_example_set_append_grows_and_keeps_content(rng):
    ex = ExampleSet([3, 2])
    rows = []
    for k in range(300):
        lab = [1 if k % 3 else -1, k, 0, 0, 0]
        blocks = [(1, rng.normal(size=2))] if k % 2 else [(0, rng.normal(size=3)), (1, rng.normal(size=2))]
        assert ex.append(lab, blocks) == k
        rows.append((lab, blocks))
    assert len(ex) == 300
    for k in (0, 1, 150, 299):
        lab, blocks = ex.example(k)
        assert lab.tolist() == rows[k][0]
        assert [b for b, _ in blocks] == [b for b, _ in rows[k][1]]
        for (_, v), (_, r) in zip(blocks, rows[k][1]):
            assert_array_equal(v, np.asarray(r, dtype=np.float32))
    assert ex._data.size < 4 * ex.data.size + 2048        # amortised doubling, not a huge over-allocation
    assert ex.nbytes >= ex.data.nbytes + ex.label_ints.nbytes
    assert ex.dat_nbytes == 4 * (300 * 7 + ex.block_ids.size + ex.data.size)
    ex.validate()


def test_example_set_subset_and_extend(problem):
    ex, layout = problem
    sub = ex.subset([5, 1, 3, 3])
    assert len(sub) == 3
    for j, i in enumerate([1, 3, 5]):
        a, b = sub.example(j), ex.example(i)
        assert_array_equal(a[0], b[0])
        assert [x for x, _ in a[1]] == [x for x, _ in b[1]]
        for (_, u), (_, v) in zip(a[1], b[1]):
            assert_array_equal(u, v)
    mask = ex.labels > 0
    pos = ex.subset(mask)
    assert len(pos) == mask.sum() and np.all(pos.labels == 1)
    both = ExampleSet(layout.sizes)
    both.extend(pos)
    both.extend(ex.subset(~mask))
    assert len(both) == len(ex)
    assert_allclose(dense(both, layout.sizes), np.vstack([dense(ex, layout.sizes)[mask],
                                                          dense(ex, layout.sizes)[~mask]]))
    both.validate(layout.sizes)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reserve", [False, True])
def test_example_set_keep_in_place_equals_subset(rng, reserve):
    for trial in range(60):
        ex = ExampleSet(block_sizes=[1, 3, 5])
        n = int(rng.integers(0, 30))
        for i in range(n):
            chosen = sorted(rng.choice(3, int(rng.integers(1, 4)), replace=False))
            ex.append([int(rng.choice([-1, 1])), i, 0, 0, 0], [(b, rng.normal(size=[1, 3, 5][b])) for b in chosen])
        if reserve:
            ex.reserve(n + 50, 200, 2000)
        cap = ex.capacity_nbytes
        mask = rng.random(n) < rng.random()
        ref = ex.subset(mask)
        ex.keep(mask)
        assert ex.capacity_nbytes == cap  # compacted where it was
        for name in ("label_ints", "example_ptr", "block_ids", "block_ptr", "data"):
            assert_array_equal(getattr(ex, name), getattr(ref, name), err_msg=name)
        ex.append([1, 99, 0, 0, 0], [(0, [1.0])])
        ref.append([1, 99, 0, 0, 0], [(0, [1.0])])
        assert_array_equal(ex.data, ref.data)
        assert_array_equal(ex.block_ptr, ref.block_ptr)


def test_example_set_reserve_avoids_reallocation():
    ex = ExampleSet(block_sizes=[4])
    ex.reserve(100, 100, 400)
    buf = ex._data
    for i in range(100):
        ex.append([1, i, 0, 0, 0], [(0, np.full(4, i, dtype=np.float32))])
    assert ex._data is buf
    assert_array_equal(ex.data.reshape(100, 4)[:, 0], np.arange(100))


def test_append_rejects_bad_examples():
    ex = ExampleSet([2, 3])
    with pytest.raises(ValueError, match="example 0: label 2 is not"):
        ex.append([2, 1, 0, 0, 0], [(0, [1, 2])])
    with pytest.raises(ValueError, match="example 0: label_ints must be 5"):
        ex.append([1, 1, 0], [(0, [1, 2])])
    with pytest.raises(ValueError, match="example 0: block index 2 is out of range"):
        ex.append([1, 1, 0, 0, 0], [(2, [1, 2])])
    with pytest.raises(ValueError, match="example 0: block 1 has 2 values, the layout says 3"):
        ex.append([1, 1, 0, 0, 0], [(1, [1, 2])])
    with pytest.raises(ValueError, match="example 0: block 0 has NaN"):
        ex.append([1, 1, 0, 0, 0], [(0, [np.nan, 2])])
    with pytest.raises(ValueError, match="example 0: block 0 has NaN or infinite"):
        ex.append([1, 1, 0, 0, 0], [(0, [np.inf, 2])])
    assert len(ex) == 0
    ex.append([1, 1, 0, 0, 0], [(0, [1, 2])])
    with pytest.raises(ValueError, match="example 1: label -3"):
        ex.append([-3, 1, 0, 0, 0], [(0, [1, 2])])


def _raw_set(labels, ids, data_rows, sizes):
    n = len(labels)
    return ExampleSet.from_arrays(
        np.array([[y, i, 0, 0, 0] for i, y in enumerate(labels)]), np.arange(n + 1), ids,
        np.concatenate([[0], np.cumsum([len(r) for r in data_rows])]), np.concatenate(data_rows),
        validate=False)


def test_fit_rejects_bad_input(problem):
    ex, layout = problem
    with pytest.raises(ValueError, match="empty"):
        fit_lsvm(ExampleSet(layout.sizes), layout, 0.1, 1.0, seed=0)
    with pytest.raises(ValueError, match="lower bounds have 3 values, the layout needs 17"):
        fit_lsvm(ex, (layout.sizes, layout.regmult, layout.learnmult, [0.0, 0.0, 0.0]), 0.1, 1.0, seed=0)
    with pytest.raises(ValueError, match="init has 4 values"):
        fit_lsvm(ex, layout, 0.1, 1.0, seed=0, init=np.zeros(4))
    with pytest.raises(ValueError, match="init has NaN"):
        fit_lsvm(ex, layout, 0.1, 1.0, seed=0, init=np.full(layout.num_weights, np.nan))
    for C, J in ((0.0, 1.0), (-1.0, 1.0), (np.inf, 1.0), (0.1, 0.0), (0.1, np.nan)):
        with pytest.raises(ValueError, match="must be a positive finite number"):
            fit_lsvm(ex, layout, C, J, seed=0)
    with pytest.raises(ValueError, match="seed"):
        fit_lsvm(ex, layout, 0.1, 1.0, seed=-1)
    with pytest.raises(ValueError, match="max_updates"):
        fit_lsvm(ex, layout, 0.1, 1.0, seed=0, max_updates=-5)
    sizes = [1, 2]
    lay2 = BlockLayout(sizes, [0, 1], [1, 1], None)
    bad = _raw_set([1, 1, 0], np.array([0, 1, 1]), [[1.0], [1.0, 2.0], [1.0, 2.0]], sizes)
    with pytest.raises(ValueError, match="example 2: label 0 is not"):
        fit_lsvm(bad, lay2, 0.1, 1.0, seed=0)
    bad = _raw_set([1, -1, 1], np.array([0, 1, 5]), [[1.0], [1.0, 2.0], [1.0, 2.0]], sizes)
    with pytest.raises(ValueError, match="example 2: block index 5 is out of range"):
        fit_lsvm(bad, lay2, 0.1, 1.0, seed=0)
    bad = _raw_set([1, -1, 1], np.array([0, 1, 0]), [[1.0], [1.0, 2.0], [1.0, 2.0]], sizes)
    with pytest.raises(ValueError, match="example 2: block 0 has 2 values, the layout says 1"):
        fit_lsvm(bad, lay2, 0.1, 1.0, seed=0)
    bad = _raw_set([1, -1, 1], np.array([0, 1, 1]), [[1.0], [np.nan, 2.0], [1.0, 2.0]], sizes)
    with pytest.raises(ValueError, match="example 1: block 1 has a NaN or infinite"):
        fit_lsvm(bad, lay2, 0.1, 1.0, seed=0)
    bad = _raw_set([1, -1, 1], np.array([0, 1, 1]), [[1.0], [1.0, 2.0], [-np.inf, 2.0]], sizes)
    with pytest.raises(ValueError, match="example 2: block 1 has a NaN or infinite"):
        lsvm_objective(bad, lay2, 0.1, 1.0, np.zeros(3))


def test_layout_rejects_bad_values():
    with pytest.raises(ValueError, match="regmult and learnmult need 2"):
        BlockLayout([1, 2], [0.0], [1.0, 1.0], None)
    with pytest.raises(ValueError, match="regmult must be finite and >= 0"):
        BlockLayout([1, 2], [0.0, -1.0], [1.0, 1.0], None)
    with pytest.raises(ValueError, match="block sizes must be positive"):
        BlockLayout([1, 0], [0.0, 1.0], [1.0, 1.0], None)
    with pytest.raises(ValueError, match="lower bounds must not be NaN"):
        BlockLayout([1, 2], [0.0, 1.0], [1.0, 1.0], [0.0, np.nan, 0.0])


# --------------------------------------------------------------------------------------------
# Ctrl+C
# --------------------------------------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from dpm.learn import BlockLayout, ExampleSet, fit_lsvm
    rng = np.random.default_rng(0)
    layout = BlockLayout([1, 2000], [0.0, 1.0], [20.0, 1.0], None)
    ex = ExampleSet(layout.sizes)
    for k in range(400):
        y = 1 if k % 2 else -1
        ex.append([y, k, 0, 0, 0], [(0, [1.0]), (1, rng.normal(size=2000) + 0.1 * y)])
    print("ready", flush=True)
    try:
        fit_lsvm(ex, layout, 0.01, 1.0, seed=0, max_updates=10**10)
    except KeyboardInterrupt:
        print("interrupted", time.time(), flush=True)
        raise
""")


def test_ctrl_c_interrupts_within_a_second():
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=str(REPO), preexec_fn=sigint_default)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)                      # well inside the compiled loop
        assert proc.poll() is None
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
    line = [ln for ln in out.splitlines() if ln.startswith("interrupted")]
    assert line, out
    delay = float(line[0].split()[1]) - sent
    assert delay < 1.0, f"KeyboardInterrupt arrived {delay:.2f} s after SIGINT"
