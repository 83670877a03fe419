"""Plain NumPy/Python references for the latent-SVM learner's tests, and the random problems they share.

Independent of the compiled learner: the objective, subgradient and per-update
SGD loop written out from ``learn.cc``'s definitions (spec §1.9), and a
splitmix64 generator in Python integers.
"""
import numpy as np

from dpm.learn import INCACHE, WAIT, BlockLayout, ExampleSet

MASK64 = (1 << 64) - 1


# --------------------------------------------------------------------------------------------
# Independent references
# --------------------------------------------------------------------------------------------

def ref_splitmix64_uniform(seed, n):
    """splitmix64 in Python integers -> n doubles in [0, 1)."""
    state = seed & MASK64
    out = []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        out.append((z >> 11) * 2.0 ** -53)
    return np.array(out)


def dense(examples, sizes):
    """Each example as a dense float64 row over the concatenated weight vector."""
    off = np.concatenate([[0], np.cumsum(sizes)])
    X = np.zeros((len(examples), off[-1]))
    for i in range(len(examples)):
        _, blocks = examples.example(i)
        for b, vals in blocks:
            X[i, off[b]:off[b + 1]] += vals
    return X


def ref_groups(examples):
    """Unique flags (first copy in file order) and groups of unique examples by label ints."""
    seen = set()
    unique = np.zeros(len(examples), dtype=bool)
    groups = {}
    for i in range(len(examples)):
        lab, blocks = examples.example(i)
        key = (tuple(lab), tuple((b, v.tobytes()) for b, v in blocks))
        if key in seen:
            continue
        seen.add(key)
        unique[i] = True
        groups.setdefault(tuple(lab), []).append(i)
    return unique, groups


def ref_objective(X, labels, groups, sizes, regmult, C, J, w):
    off = np.concatenate([[0], np.cumsum(sizes)])
    reg = sum(0.5 * regmult[b] * np.sum(w[off[b]:off[b + 1]] ** 2) for b in range(len(sizes)))
    lpos = lneg = 0.0
    for key, members in groups.items():
        y = key[0]
        h = max(0.0, 1.0 - y * np.max(X[members] @ w))
        if y > 0:
            lpos += C * J * h
        else:
            lneg += C * h
    return reg + lpos + lneg, reg, lpos, lneg


def ref_subgradient(X, groups, sizes, regmult, C, J, w):
    off = np.concatenate([[0], np.cumsum(sizes)])
    g = np.concatenate([regmult[b] * w[off[b]:off[b + 1]] for b in range(len(sizes))])
    for key, members in groups.items():
        y = key[0]
        s = X[members] @ w
        m = members[int(np.argmax(s))]
        if y * s.max() < 1:
            g -= C * (J if y > 0 else 1.0) * y * X[m]
    return g


def ref_sgd(X, labels, groups, layout, C, J, seed, epochs, w0=None):
    """learn.cc's gd loop written out per update in NumPy (eager regularisation).

    Groups are taken in the order collapse_examples gives them.  Returns the
    weights and the cache counters after each epoch, and the updates made.
    """
    order, member_lists = groups
    sizes = layout.sizes
    off = np.concatenate([[0], np.cumsum(sizes)])
    reg = layout.regmult.astype(np.float32).astype(np.float64)
    lrn = layout.learnmult.astype(np.float32).astype(np.float64)
    regw = np.repeat(reg * lrn, sizes)
    lrnw = np.repeat(lrn, sizes)
    w = np.zeros(off[-1]) if w0 is None else np.array(w0, dtype=np.float64)
    n = len(order)
    W = np.zeros(n, dtype=np.int64)
    state = [seed & MASK64]

    def uniform():
        state[0] = (state[0] + 0x9E3779B97F4A7C15) & MASK64
        z = state[0]
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        return (z >> 11) * 2.0 ** -53

    t = 0
    trace = []
    for _ in range(epochs):
        perm = list(range(n))
        for i in range(n):
            j = i + int(uniform() * (n - i))
            perm[i], perm[j] = perm[j], perm[i]
        cnum = int(np.sum(W <= INCACHE))
        for i in perm:
            if W[i] > INCACHE:
                W[i] -= 1
                continue
            T = t + 1000.0
            rateX, rateR = cnum * C / T, 1.0 / T
            t += 1
            scores = X[member_lists[i]] @ w
            M = member_lists[i][int(np.argmax(scores))]
            V = scores.max()
            w = w - rateR * regw * w
            y = order[i]
            if y * V < 1:
                W[i] = 0
                w = w + (J if y > 0 else -1.0) * rateX * lrnw * X[M]
            elif y < 0:
                W[i] = WAIT if W[i] == INCACHE else W[i] + 1
        w = np.maximum(w, layout.lower_bounds)
        trace.append((w.copy(), W.copy(), cnum, t))
    return trace


# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------

def random_layout(rng, sizes=(1, 7, 5, 4)):
    sizes = np.array(sizes)
    regmult = np.array([0.0] + [1.0] * (len(sizes) - 2) + [10.0])[:len(sizes)]
    learnmult = np.array([20.0] + [1.0] * (len(sizes) - 2) + [0.1])[:len(sizes)]
    lb = np.full(sizes.sum(), -100.0)
    return BlockLayout(sizes, regmult, learnmult, lb)


def random_examples(rng, layout, n_windows=30, max_members=3, duplicates=4, scale=1.0):
    """Windows with 1..max_members latent members each, plus exact duplicates."""
    ex = ExampleSet(layout.sizes)
    nb = layout.num_blocks
    for k in range(n_windows):
        y = 1 if k % 2 == 0 else -1
        lab = [y, k + 1, int(rng.integers(0, 5)), int(rng.integers(-3, 3)), int(rng.integers(-3, 3))]
        for _ in range(int(rng.integers(1, max_members + 1))):
            blocks = [(0, [1.0])]
            for b in range(1, nb):
                if rng.random() < 0.8:
                    blocks.append((b, (scale * rng.normal(size=layout.sizes[b]) + 0.3 * y).astype(np.float32)))
            ex.append(lab, blocks)
    for _ in range(duplicates):
        lab, blocks = ex.example(int(rng.integers(0, len(ex))))
        ex.append(lab, [(b, v.copy()) for b, v in blocks])
    return ex
