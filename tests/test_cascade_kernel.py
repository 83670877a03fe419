"""The compiled cascade search (dpm/detection/_cascade.pyx) against a plain-Python statement of its sums.

A filter response is summed in a fixed order (dpm/detection/_cascade_dot.h): per filter row, the
products of its run of cells in 8 partial sums, combined as ((s0 + s4) + (s2 + s6)) + ((s1 + s5) +
(s3 + s7)), the rows added in order from 0.0.  The kernel computes adjacent responses of a window
row together; each must still be exactly that sum, whether the filter is clipped by the virtual
padding (release 3.1's levels) or not (release 5's).
"""
import importlib
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import builds_of
from dpm.detection.cascade import cost_table
from dpm.detection.release5.parse import placed_detections


def _lane_dot(a, b):
    t = [0.0] * 8
    n, i = len(a), 0
    while i + 8 <= n:
        for v in range(8):
            t[v] += float(a[i + v]) * float(b[i + v])
        i += 8
    for v, j in enumerate(range(i, n)):
        t[v] += float(a[j]) * float(b[j])
    return ((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7]))


def _response(m, f, x, y, pady, padx):
    """Filter f with its top-left cell at (x, y) of map m read as padded by (pady, padx) zero cells:
    only the cells inside m are summed, each row's run of them as one dot product."""
    r0, c0 = y - pady, x - padx
    ra, rb = max(0, -r0), min(f.shape[0], m.shape[0] - r0)
    ca, cb = max(0, -c0), min(f.shape[1], m.shape[1] - c0)
    s = 0.0
    if ca >= cb:
        return s
    for r in range(ra, rb):
        s += _lane_dot(m[r0 + r, c0 + ca:c0 + cb].ravel(), f[r, ca:cb].ravel())
    return s


def _case(rng, padding):
    d, k, nparts = 32, 6, 2
    root = rng.standard_normal((3, 4, d))
    parts = [dict(full=rng.standard_normal((6, 6, d)), proj=rng.standard_normal((6, 6, k)),
                  anchor=(1 + 2 * j, 2), cost=cost_table((0.05, 0.01, 0.04, -0.02), 4))
             for j in range(nparts)]
    n = nparts + 1
    comp = dict(root=root, bias=0.5, order=np.array([0, 2, 1, 0, 1, 2], dtype=np.int64),
                thresholds=np.full(4 * n, -np.inf), parts=parts)
    levels = dict(root=rng.standard_normal((10, 12, d)), part=rng.standard_normal((20, 24, d)),
                  part_proj=rng.standard_normal((20, 24, k)))
    pady, padx = padding
    hr = levels["root"].shape[0] + 2 * pady - root.shape[0] + 1
    wr = levels["root"].shape[1] + 2 * padx - root.shape[1] + 1
    scores = rng.standard_normal((hr, wr))
    return comp, levels, scores


@pytest.mark.parametrize("build", builds_of("dpm.detection._cascade"))
@pytest.mark.parametrize("padding", [(0, 0), (2, 3)])
def test_full_responses_are_the_fixed_order_sums(build, padding, rng):
    comp, lv, scores = _case(rng, padding)
    kernel = importlib.import_module(build).CascadeKernel(
        [comp], window=4, skip_border=False, threshold=-np.inf, padding=padding, blocks=True)
    pos, score, parts, blocks = kernel.level(lv["root"], lv["part"], lv["part_proj"], [scores])
    pady, padx = padding
    assert len(pos) > scores.size // 2  # no pruning: all but positions with a probe off the part level
    full, proj = kernel.responses
    assert full > 0 and proj > 0
    checked = 0
    for k in range(0, len(pos), 7):
        _, rx, ry = (int(v) for v in pos[k])
        # stage 3: the full root at (rx, ry); stages 4, 5: parts 1, 2 at their placements
        assert blocks[k, 3, 1] == _response(lv["root"], comp["root"], rx, ry, pady, padx)
        for stage, part in ((4, 1), (5, 2)):
            x, y = (int(v) for v in parts[k, part - 1])
            if x < 0:
                continue  # probe outside the part level: no placement
            want = _response(lv["part"], comp["parts"][part - 1]["full"], x, y, 2 * pady, 2 * padx)
            assert blocks[k, stage, 1] == want
            checked += 1
    assert checked > 10


def _star_stub(components):
    # a StarModel's attributes that placed_detections reads
    comps = [SimpleNamespace(detwindow=(40, 24), shiftwindow=(1, 2),
                             filters=[SimpleNamespace(anchor=(0, 0, 0), size=(5, 3), filter_index=3 * c),
                                      SimpleNamespace(anchor=(1, 2, 1), size=(6, 6), filter_index=3 * c + 1),
                                      SimpleNamespace(anchor=(3, 1, 1), size=(6, 6), filter_index=3 * c + 2)])
             for c in range(components)]
    return SimpleNamespace(sbin=8, components=comps, num_filters=3 * components, num_parts=2)


def test_placed_detections_with_a_level_per_detection_are_the_per_level_ones(rng):
    model = _star_stub(2)
    pyramid = SimpleNamespace(interval=5, padx=4, pady=3, scales=2.0 ** (-np.arange(20) / 5))
    n = 40
    levels = np.sort(rng.integers(5, 20, n))
    rule = rng.integers(0, 2, n)
    xs, ys = rng.integers(0, 30, n), rng.integers(0, 30, n)
    placed = rng.integers(0, 60, (n, 3, 2))
    score = rng.standard_normal(n)
    together = placed_detections(model, pyramid, levels, rule, xs, ys, placed, score)
    rows = [placed_detections(model, pyramid, int(lev), rule[levels == lev], xs[levels == lev],
                              ys[levels == lev], placed[levels == lev], score[levels == lev])
            for lev in np.unique(levels)]
    for name in ("ds", "bs", "boxes", "levels"):
        np.testing.assert_array_equal(getattr(together, name), np.concatenate([getattr(r, name) for r in rows]))
    assert together.levels.tolist() == levels.tolist()
    # a box: the part (anchor (1, 2, 1)) of detection 0, one octave finer, with the virtual padding
    lev, c = int(levels[0]), int(rule[0])
    fscale = 8 / pyramid.scales[lev - 5]
    bx1 = (placed[0, 1, 0] + 4 - 4 * 2) * fscale
    assert together.boxes[0, 1, 0] == bx1 + 1 and together.boxes[0, 1, 2] == bx1 + 6 * fscale - 1 + 1
    assert together.bs[0, 4 * (3 * c + 1)] == bx1 + 1


def _lane_dot32(m, f):
    """A float32 filter placement's sum as _cascade_dot.h forms it: the products of each filter row,
    by index i in the row, into 8 float32 lanes (i mod 8) carried from row to row, then
    ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)) in float32."""
    t = [np.float32(0.0)] * 8
    for a, b in zip(m, f):
        a, b = a.ravel(), b.ravel()
        for i in range(len(a)):
            t[i & 7] = np.float32(t[i & 7] + np.float32(a[i] * b[i]))
    f32 = np.float32
    return float(f32(f32(f32(t[0] + t[4]) + f32(t[2] + t[6])) + f32(f32(t[1] + t[5]) + f32(t[3] + t[7]))))


def _response_any(m, f, x, y, pady, padx):
    if m.dtype == np.float64:
        return _response(m, f, x, y, pady, padx)
    r0, c0 = y - pady, x - padx
    ra, rb = max(0, -r0), min(f.shape[0], m.shape[0] - r0)
    ca, cb = max(0, -c0), min(f.shape[1], m.shape[1] - c0)
    if ca >= cb or ra >= rb:
        return 0.0
    return _lane_dot32(m[r0 + ra:r0 + rb, c0 + ca:c0 + cb], f[ra:rb, ca:cb])


def _sequential_search(comp, lv, scores, S, padding, threshold):
    """cascade.cc's rule, one root position at a time through all its stages (the kernel's header):
    responses computed when a hypothesis needs them (unknown, deformation score not below
    t[2s] - score) and known to every later hypothesis; window maximum as dt.cc evaluates it."""
    pady, padx = padding
    parts, t, order = comp["parts"], comp["thresholds"], comp["order"]
    n = len(parts) + 1
    memo = {}

    def part_score(j, pca, px, py, defthresh):
        p = parts[j]
        f = p["proj"] if pca else p["full"]
        lev = lv["part_proj"] if pca else lv["part"]
        H = lev.shape[0] + 4 * pady - f.shape[0] + 1
        W = lev.shape[1] + 4 * padx - f.shape[1] + 1
        if px < 0 or py < 0 or px >= W or py >= H:
            return -np.inf, -1, -1, -np.inf
        known = memo.setdefault((j, pca), {})
        qx, lx, qy, ly = p["cost"]
        xs = range(max(px - S, 0), min(px + S, W - 1) + 1)
        col = {}
        for y in range(max(py - S, 0), min(py + S, H - 1) + 1):
            ky = py - y + S
            for x in xs:
                kx = px - x + S
                deform = -(qx[kx] + lx[kx]) - (qy[ky] + ly[ky])
                if (x, y) not in known and not deform < defthresh:
                    known[(x, y)] = _response_any(lev, f, x, y, 2 * pady, 2 * padx)
            for x in xs:
                if (x, y) in known:
                    v = (-known[(x, y)] + qy[ky]) + ly[ky]
                    if x not in col or v < col[x][0]:
                        col[x] = (v, y)
        best, bx, by = np.inf, -1, -1
        for x in xs:
            if x in col:
                v = (col[x][0] + qx[px - x + S]) + lx[px - x + S]
                if v < best:
                    best, bx, by = v, x, col[x][1]
        if bx < 0:
            return -np.inf, -1, -1, -np.inf
        return -best, bx, by, known[(bx, by)]

    found = []
    for rx in range(scores.shape[1]):
        for ry in range(scores.shape[0]):
            r = scores[ry, rx]
            score, pscore, placed = r + comp["bias"], {0: r}, {}
            stage = 1
            while stage < 2 * n:
                if score < t[2 * stage - 1]:
                    break
                part, pca = int(order[stage]), stage < n
                if part == 0:
                    score += _response(lv["root"], comp["root"], rx, ry, pady, padx) - pscore[0]
                else:
                    p = parts[part - 1]
                    ps, bx, by, _ = part_score(part - 1, pca, 2 * rx + p["anchor"][0], 2 * ry + p["anchor"][1],
                                               t[2 * stage] - score)
                    if pca:
                        pscore[part] = ps
                        score += ps
                    else:
                        score += ps - pscore[part]
                        placed[part] = (bx, by)
                stage += 1
            if stage == 2 * n and score > threshold:
                found.append(((0, rx, ry), score, [placed[k] for k in range(1, n)]))
    computed = [sum(len(v) for (j, pca), v in memo.items() if pca == want) for want in (False, True)]
    return found, computed


@pytest.mark.parametrize("build", builds_of("dpm.detection._cascade"))
@pytest.mark.parametrize("proj_dtype", [np.float64, np.float32])
def test_pruned_search_is_cascade_cc_rule_one_hypothesis_at_a_time(build, proj_dtype, rng):
    # The kernel runs stage by stage over all positions and each part stage in three passes
    # (first needers, responses, window maxima); with pruning at every stage it must give what
    # the sequential rule gives: the same detections, scores, placements and responses computed.
    d, k, S, padding = 8, 3, 2, (1, 2)
    parts = [dict(full=0.15 * rng.standard_normal((3, 3, d)),
                  proj=(0.15 * rng.standard_normal((3, 3, k))).astype(proj_dtype),
                  anchor=(1 + j, 1), cost=cost_table((0.3, 0.1, 0.2, -0.1), S)) for j in range(2)]
    comp = dict(root=0.15 * rng.standard_normal((2, 3, d)), bias=0.2, order=np.array([0, 2, 1, 0, 1, 2], dtype=np.int64),
                parts=parts)
    lv = dict(root=rng.standard_normal((7, 8, d)), part=rng.standard_normal((14, 16, d)))
    lv["part_proj"] = rng.standard_normal((14, 16, k)).astype(proj_dtype)
    hr = lv["root"].shape[0] + 2 * padding[0] - 2 + 1
    wr = lv["root"].shape[1] + 2 * padding[1] - 3 + 1
    scores = rng.standard_normal((hr, wr))
    module = importlib.import_module(build)

    def run(thresholds):
        c = dict(comp, thresholds=np.ascontiguousarray(thresholds, dtype=np.float64))
        kernel = module.CascadeKernel([c], window=S, skip_border=False, threshold=-1.0, padding=padding)
        got = kernel.level(lv["root"], lv["part"], lv["part_proj"], [scores])
        return kernel, got, c

    # Thresholds near the 30th percentiles of the unpruned run's scores at each stage (hypotheses
    # stopped at every stage), deformation thresholds 1 below the next stage's (placements skipped).
    open_kernel, _, _ = run(np.full(12, -np.inf))
    t = np.full(12, -np.inf)
    t[1::2] = [-0.25, 0.35, 1.0, 0.7, 1.8, 2.8]
    t[2::2] = t[3::2] - 1.0
    kernel, (pos, score, placed, _), c = run(t)
    want, computed = _sequential_search(c, lv, scores, S, padding, threshold=-1.0)
    assert len(want) > 3
    assert [tuple(int(v) for v in p) for p in pos] == [w[0] for w in want]
    assert score.tolist() == [w[1] for w in want]
    assert [[tuple(int(v) for v in xy) for xy in row] for row in placed] == [w[2] for w in want]
    assert list(kernel.responses) == computed
    passed = kernel.passed[0]
    assert all(passed[s + 1] < passed[s] for s in range(5))                   # hypotheses pruned at each stage
    assert kernel.responses[1] < 0.9 * open_kernel.responses[1]               # placements skipped
    assert kernel.responses[0] < 0.9 * open_kernel.responses[0]


@pytest.mark.parametrize("build", builds_of("dpm.detection._cascade"))
def test_hypothesis_ids_wrap_around_without_changing_results(build, rng):
    # Each stage pass takes fresh hypothesis ids; near 2^31 the memo stamps are cleared and ids restart.
    comp, lv, scores = _case(rng, (2, 3))
    comp = dict(comp, thresholds=np.full(12, -1.0))
    module = importlib.import_module(build)
    fresh = module.CascadeKernel([comp], window=4, skip_border=False, threshold=-np.inf, padding=(2, 3))
    want = fresh.level(lv["root"], lv["part"], lv["part_proj"], [scores])
    assert 1 < fresh.next_id < 10_000
    late = module.CascadeKernel([comp], window=4, skip_border=False, threshold=-np.inf, padding=(2, 3))
    late.level(lv["root"], lv["part"], lv["part_proj"], [scores])
    late.next_id = 2**31 - 200          # the next level's passes cross the limit
    for _ in range(3):
        got = late.level(lv["root"], lv["part"], lv["part_proj"], [scores])
        for a, b in zip(got[:3], want[:3]):
            np.testing.assert_array_equal(a, b)
    assert late.next_id < 10_000
    with pytest.raises(ValueError, match="next_id"):
        late.next_id = 0
