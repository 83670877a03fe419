"""Part order (§C.3) and pruning thresholds (§C.4) on small statistics with hand-computed answers."""
import numpy as np
import pytest

from dpm.cascade.thresholds import identity_order, part_order, stage_thresholds


def _blocks(root, totals, defs):
    """Rows [0, root, d_1, s_1, ...] whose part i scores totals[:, i - 1] in all (d_i + s_i)."""
    totals, defs = np.asarray(totals, float), np.asarray(defs, float)
    m, p = totals.shape
    out = np.zeros((m, 2 + 2 * p))
    out[:, 1] = root
    out[:, 2::2] = defs
    out[:, 3::2] = totals - defs
    return out


def test_order_is_greedy_least_remaining_variance():
    # P1 = 0 0 0, P2 = 1 2 3 (var 1), P3 = 0 4 8 (var 16).  Step 1: leaving out P1 leaves var(P2 + P3) = 25,
    # P2 -> var(P1 + P3) = 16, P3 -> var(P1 + P2) = 1: part 3.  Step 2: P1 -> var(P2) = 1, P2 -> var(P1) = 0:
    # part 2.  Then part 1.
    totals = [[0, 1, 0], [0, 2, 4], [0, 3, 8]]
    defs = [[-1, 0, -2], [0, -1, 0], [-3, 0, -1]]
    b = _blocks([5, -7, 2], totals, defs)
    assert part_order(b).tolist() == [0, 3, 2, 1, 0, 3, 2, 1]


def test_order_ties_go_to_the_first_part():
    # P3 = 0 3 6, P1 = P2 = 0 1 2.  Step 1: leaving out P3 leaves var(P1 + P2) = 4 (P1 or P2: 16): part 3.
    # Step 2: leaving out P1 or P2 leaves variance 1 either way: the first, part 1 (a "<=" would give 2).
    b = _blocks(0, [[0, 0, 0], [1, 1, 3], [2, 2, 6]], np.zeros((3, 3)))
    assert part_order(b).tolist() == [0, 3, 1, 2, 0, 3, 1, 2]


def test_order_with_fewer_than_two_positives_is_the_parts_own():
    # MATLAB's var of one value is 0: every candidate ties.
    assert part_order(_blocks([1], [[5, -1, 3]], [[0, 0, 0]])).tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert part_order(np.zeros((0, 8))).tolist() == identity_order(4).tolist()
    assert part_order(np.zeros((4, 2))).tolist() == [0, 0]   # a root-only component


# Two positives, root + one part; columns [d_0, s_0, d_1, s_1].
PROJ = np.array([[0, 1, -0.5, 2], [0, 2, -1, 0]], float)
FULL = np.array([[0, 3, -1, 1], [0, 1, -0.5, 3]], float)
OFFSET = np.array([-2.0, -2.0])


def test_thresholds_by_hand():
    t = stage_thresholds(PROJ, FULL, OFFSET, [0, 1, 0, 1], 0.25)
    # S = [PROJ FULL]; rows A: 0 1 -.5 2 | 0 3 -1 1 and B: 0 2 -1 0 | 0 1 -.5 3, offset -2.
    # t[0..3]: prefix sums + offset: min(-2, -2), min(-1, 0), min(-1.5, -1), min(.5, -1)
    # t[4..6]: windows of 4 columns starting at 1, 2, 3 (0-based): min(.5, -1), min(2.5, -2), min(2, -1.5)
    assert t.tolist() == [-2, -1, -1.5, -1, -1, -2, -1.5, 0.25]


def test_thresholds_follow_the_order():
    # Root + two parts; the order places part 2 before part 1, so stage 1 adds part 2's (d, s).
    proj = np.array([[0, 1, -1, 10, -2, 20]], float)
    full = np.array([[0, 2, -3, 30, -4, 40]], float)
    t = stage_thresholds(proj, full, [0.5], [0, 2, 1, 0, 2, 1], -1.0)
    s = [0, 1, -2, 20, -1, 10, 0, 2, -4, 40, -3, 30]
    expect = [sum(s[:j]) + 0.5 for j in range(1, 7)] + [sum(s[j - 1:j + 5]) + 0.5 for j in range(2, 7)] + [-1.0]
    assert t.tolist() == expect
    assert t[3] == 0.5 + 1 - 2 + 20


def test_a_component_without_positives_never_fires():
    t = stage_thresholds(np.zeros((0, 4)), np.zeros((0, 4)), np.zeros(0), [0, 1, 0, 1], 0.0)
    assert t.shape == (8,) and np.isposinf(t).all()


@pytest.mark.parametrize("order", [[0, 1, 0, 2], [0, 0, 0, 0], [1, 0, 1, 0], [0, 1]])
def test_bad_order_is_refused(order):
    with pytest.raises(ValueError, match="order"):
        stage_thresholds(PROJ, FULL, OFFSET, order, 0.0)
