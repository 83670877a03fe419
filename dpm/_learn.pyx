# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#
# Latent-SVM stochastic subgradient learner: the optimisation loop of
# voc-release3.1 ``learn.cc`` (function ``gd``, plus ``score``), by P. Felzenszwalb,
# R. Girshick, D. McAllester and D. Ramanan, MIT-style licence.  Everything else
# learn.cc did (reading files, sorting, removing duplicates, collapsing examples
# into latent groups) lives in dpm/learn.py and dpm/learnfiles.py.
#
# Memory layout (all arrays C-contiguous, every index 0-based):
#   data        float32 (D,)   feature values of every block entry, back to back
#   block_ptr   int64   (E+1,) entry e owns data[block_ptr[e]:block_ptr[e+1]]
#   block_ids   int32   (E,)   0-based block index of entry e (the .dat's 1-based
#                              block label minus one)
#   example_ptr int64   (N+1,) example i owns entries example_ptr[i]:example_ptr[i+1]
#   member_ptr  int64   (G+1,) latent group g owns members[member_ptr[g]:member_ptr[g+1]]
#   members     int64   (M,)   example indices (unique examples only)
#   group_y     int8    (G,)   class label +1/-1 of each group
#   block_off   int64   (B+1,) block b owns w[block_off[b]:block_off[b+1]]
#   regmult, learnmult, lower_bounds: float64 per block / per weight
# Weights are float64 (the .mod layout), features float32, as in learn.cc.
#
# The kernel trusts its caller: dpm.learn validates every array before building
# a Problem.

from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t
from libc.math cimport fabs
from cpython.exc cimport PyErr_CheckSignals

import numpy as np

# learn.cc's small-cache constants: a negative beyond the margin on INCACHE + 1
# consecutive visits sits out the next WAIT - INCACHE epochs.
cdef enum:
    INCACHE = 3
    WAIT = 10

# Keep the lazy per-block scale factors inside this range; outside it the block
# is folded back into its weights (the result is the same weights).
cdef double SCALE_MIN = 1e-100
cdef double SCALE_MAX = 1e100


# ---------------------------------------------------------------------------------------
# Portable random numbers: splitmix64 (Steele, Lea, Flood 2014).  learn.cc used
# drand48 seeded from the clock; this generator is explicit, seeded and the same
# on every platform.
# ---------------------------------------------------------------------------------------

cdef inline uint64_t _splitmix64(uint64_t* state) noexcept nogil:
    cdef uint64_t z
    state[0] += <uint64_t>0x9E3779B97F4A7C15ULL
    z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline double _uniform(uint64_t* state) noexcept nogil:
    # 53 random bits -> [0, 1), the role drand48() played.
    return <double>(_splitmix64(state) >> 11) * (1.0 / 9007199254740992.0)


def uniform(uint64_t seed, Py_ssize_t n):
    """The first ``n`` uniform [0, 1) doubles of the learner's generator for ``seed``.

    Exposed so that tests can check the generator against an independent
    implementation.
    """
    cdef uint64_t state = seed
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] o = out
    cdef Py_ssize_t i
    for i in range(n):
        o[i] = _uniform(&state)
    return out


# ---------------------------------------------------------------------------------------
# Inner products
# ---------------------------------------------------------------------------------------

cdef inline double _dot(const double* v, const float* x, Py_ssize_t n) noexcept nogil:
    # Eight independent accumulators (compilers pair them into vector
    # registers): the summation order differs from a plain loop (last-bit
    # differences only) but the additions no longer wait on each other.
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef double s4 = 0.0, s5 = 0.0, s6 = 0.0, s7 = 0.0
    cdef Py_ssize_t k = 0
    while k + 8 <= n:
        s0 += v[k] * x[k]
        s1 += v[k + 1] * x[k + 1]
        s2 += v[k + 2] * x[k + 2]
        s3 += v[k + 3] * x[k + 3]
        s4 += v[k + 4] * x[k + 4]
        s5 += v[k + 5] * x[k + 5]
        s6 += v[k + 6] * x[k + 6]
        s7 += v[k + 7] * x[k + 7]
        k += 8
    while k < n:
        s0 += v[k] * x[k]
        k += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


cdef inline void _axpy(double a, const float* x, double* v, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        v[k] += a * x[k]


cdef class Problem:
    """A collapsed example set with its block layout, ready for the kernel.

    Built by ``dpm.learn``; see the module header for the array layout.
    """

    cdef const float[::1] data
    cdef const int64_t[::1] block_ptr
    cdef const int32_t[::1] block_ids
    cdef const int64_t[::1] example_ptr
    cdef const int64_t[::1] member_ptr
    cdef const int64_t[::1] members
    cdef const int8_t[::1] group_y
    cdef const int64_t[::1] block_off
    cdef const double[::1] regmult
    cdef const double[::1] learnmult
    cdef const double[::1] lower_bounds
    cdef readonly double C
    cdef readonly double J
    cdef readonly Py_ssize_t num_groups
    cdef readonly Py_ssize_t num_blocks
    cdef readonly Py_ssize_t num_weights
    cdef readonly Py_ssize_t num_examples

    def __init__(self, data, block_ptr, block_ids, example_ptr, member_ptr, members, group_y,
                 block_off, regmult, learnmult, lower_bounds, double C, double J):
        self.data = data
        self.block_ptr = block_ptr
        self.block_ids = block_ids
        self.example_ptr = example_ptr
        self.member_ptr = member_ptr
        self.members = members
        self.group_y = group_y
        self.block_off = block_off
        self.regmult = regmult
        self.learnmult = learnmult
        self.lower_bounds = lower_bounds
        self.C = C
        self.J = J
        self.num_groups = self.group_y.shape[0]
        self.num_blocks = self.regmult.shape[0]
        self.num_weights = self.lower_bounds.shape[0]
        self.num_examples = self.example_ptr.shape[0] - 1

    cdef inline double _score(self, const double* w, int64_t ex) noexcept nogil:
        """w . x for example ``ex`` (unscaled weights)."""
        cdef int64_t e, b
        cdef double s = 0.0
        for e in range(self.example_ptr[ex], self.example_ptr[ex + 1]):
            b = self.block_ids[e]
            s += _dot(w + self.block_off[b], &self.data[0] + self.block_ptr[e],
                      self.block_ptr[e + 1] - self.block_ptr[e])
        return s

    cdef inline double _score_scaled(self, const double* v, const double* scale,
                                     int64_t ex) noexcept nogil:
        """w . x for example ``ex`` with w_b = scale[b] * v_b."""
        cdef int64_t e, b
        cdef double s = 0.0
        for e in range(self.example_ptr[ex], self.example_ptr[ex + 1]):
            b = self.block_ids[e]
            s += scale[b] * _dot(v + self.block_off[b], &self.data[0] + self.block_ptr[e],
                                 self.block_ptr[e + 1] - self.block_ptr[e])
        return s

    cdef int64_t _argmax(self, const double* w, int64_t g, double* best) noexcept nogil:
        """The member of group ``g`` with the highest score (the first on ties)."""
        cdef int64_t m, M = -1
        cdef double val, V = 0.0
        for m in range(self.member_ptr[g], self.member_ptr[g + 1]):
            val = self._score(w, self.members[m])
            if M < 0 or val > V:
                M = self.members[m]
                V = val
        best[0] = V
        return M

    def score_examples(self, const double[::1] w, double[::1] out):
        """Fill ``out[i]`` with ``w . x_i`` for every example ``i`` (learn.cc ``score``)."""
        cdef Py_ssize_t i
        with nogil:
            for i in range(self.num_examples):
                out[i] = self._score(&w[0], i)

    def objective(self, const double[::1] w):
        """The LSVM objective's parts at ``w``.

        Returns
        -------
        (regularizer, loss_pos, loss_neg) : tuple of float
            ``0.5 * sum_b regmult_b |w_b|^2``, ``C * J * sum_pos hinge`` and
            ``C * sum_neg hinge``, the hinge taken on the group's best member.
        """
        cdef double reg = 0.0, lpos = 0.0, lneg = 0.0, V, h, nb
        cdef Py_ssize_t b, k, g
        with nogil:
            for b in range(self.num_blocks):
                nb = 0.0
                for k in range(self.block_off[b], self.block_off[b + 1]):
                    nb += w[k] * w[k]
                reg += 0.5 * self.regmult[b] * nb
            for g in range(self.num_groups):
                self._argmax(&w[0], g, &V)
                h = 1.0 - self.group_y[g] * V
                if h > 0.0:
                    if self.group_y[g] > 0:
                        lpos += h
                    else:
                        lneg += h
        return reg, self.C * self.J * lpos, self.C * lneg

    def subgradient(self, const double[::1] w, double[::1] out):
        """Fill ``out`` with a subgradient of the objective at ``w``.

        ``regmult_b * w_b`` plus, for every group with ``y * max_m w . x_m < 1``,
        ``-C * c * y * x_M`` for its best member ``M`` (the first on ties), where
        ``c = J`` for positives and 1 for negatives.
        """
        cdef Py_ssize_t b, k, g, e
        cdef int64_t M
        cdef double V, a
        with nogil:
            for b in range(self.num_blocks):
                for k in range(self.block_off[b], self.block_off[b + 1]):
                    out[k] = self.regmult[b] * w[k]
            for g in range(self.num_groups):
                M = self._argmax(&w[0], g, &V)
                if self.group_y[g] * V < 1.0:
                    a = -self.C * (self.J if self.group_y[g] > 0 else -1.0)
                    for e in range(self.example_ptr[M], self.example_ptr[M + 1]):
                        b = self.block_ids[e]
                        _axpy(a, &self.data[0] + self.block_ptr[e], &out[0] + self.block_off[b],
                              self.block_ptr[e + 1] - self.block_ptr[e])


cdef class SGD:
    """The state of one run of learn.cc's ``gd`` loop, resumable in chunks.

    Parameters
    ----------
    problem : Problem
    w : (num_weights,) float64
        Initial weights (copied).
    seed : int
        Seed of the permutation generator (0 <= seed < 2**64).
    max_updates : int
        learn.cc's ITER: no new epoch starts once this many updates were made.

    Notes
    -----
    Regularisation ``w_b <- (1 - rateR * regmult_b * learnmult_b) w_b`` of every
    block at every update is applied lazily: ``w_b = scale_b * v_b`` and only the
    scale changes; the weights are folded back (``v_b <- scale_b * v_b``,
    ``scale_b <- 1``) at the end of each epoch, where the lower bounds are
    projected as in learn.cc.  The iterates are those of learn.cc up to rounding.
    """

    cdef Problem p
    cdef double[::1] v
    cdef double[::1] scale
    cdef double[::1] shrink
    cdef int32_t[::1] W
    cdef int64_t[::1] perm
    cdef uint64_t rng
    cdef readonly int64_t updates
    cdef readonly int64_t epochs
    cdef readonly int64_t max_updates
    cdef readonly int64_t in_cache
    cdef readonly bint finished
    cdef int64_t pos
    cdef object _v, _W

    def __init__(self, Problem problem, const double[::1] w, uint64_t seed, int64_t max_updates):
        cdef Py_ssize_t b
        self.p = problem
        self._v = np.array(w, dtype=np.float64, copy=True)
        self.v = self._v
        self.scale = np.ones(problem.num_blocks, dtype=np.float64)
        self.shrink = np.empty(problem.num_blocks, dtype=np.float64)
        for b in range(problem.num_blocks):
            self.shrink[b] = problem.regmult[b] * problem.learnmult[b]
        self._W = np.zeros(problem.num_groups, dtype=np.int32)
        self.W = self._W
        self.perm = np.empty(problem.num_groups, dtype=np.int64)
        self.rng = seed
        self.updates = 0
        self.epochs = 0
        self.max_updates = max_updates
        self.in_cache = 0
        self.finished = False
        self.pos = problem.num_groups   # no epoch under way

    def weights(self):
        """The current weights ``w`` as a new float64 array."""
        out = np.empty(self.p.num_weights, dtype=np.float64)
        cdef double[::1] o = out
        cdef Py_ssize_t b, k
        for b in range(self.p.num_blocks):
            for k in range(self.p.block_off[b], self.p.block_off[b + 1]):
                o[k] = self.scale[b] * self.v[k]
        return out

    def cache_state(self):
        """learn.cc's per-group cache counters ``W`` (a copy).

        A group is visited while ``W <= 3`` (INCACHE); a negative found beyond
        the margin with ``W == 3`` is set to 10 (WAIT) and skipped, counting
        down, until ``W`` is back at 3.
        """
        return np.array(self._W, copy=True)

    cdef void _fold(self, Py_ssize_t b) noexcept nogil:
        cdef Py_ssize_t k
        cdef double s = self.scale[b]
        if s != 1.0:
            for k in range(self.p.block_off[b], self.p.block_off[b + 1]):
                self.v[k] *= s
            self.scale[b] = 1.0

    cdef void _start_epoch(self) noexcept nogil:
        # learn.cc: a fresh Fisher-Yates permutation, then count the groups in cache.
        cdef Py_ssize_t n = self.p.num_groups, i, j
        cdef int64_t tmp, cnum = 0
        for i in range(n):
            self.perm[i] = i
        for i in range(n):
            j = i + <Py_ssize_t>(_uniform(&self.rng) * (n - i))
            tmp = self.perm[i]
            self.perm[i] = self.perm[j]
            self.perm[j] = tmp
        for i in range(n):
            if self.W[i] <= INCACHE:
                cnum += 1
        self.in_cache = cnum
        self.pos = 0

    cdef void _end_epoch(self) noexcept nogil:
        # learn.cc projects the lower bounds after each epoch (only then).
        cdef Py_ssize_t b, k
        cdef double x
        for b in range(self.p.num_blocks):
            self._fold(b)
            for k in range(self.p.block_off[b], self.p.block_off[b + 1]):
                x = self.p.lower_bounds[k]
                if self.v[k] < x:
                    self.v[k] = x
        self.epochs += 1

    cdef int64_t _visit(self, int64_t i) noexcept nogil:
        """One step of gd's inner loop for group ``i``; returns the work done."""
        cdef int64_t m, ex, M = -1, e, b, n, work = 0
        cdef double T, rateX, rateR, val, V = 0.0, s, a
        cdef int y
        cdef double* v = &self.v[0]
        cdef double* scale = &self.scale[0]
        if self.W[i] > INCACHE:
            self.W[i] -= 1
            return 1
        T = self.updates + 1000.0
        rateX = self.in_cache * self.p.C / T
        rateR = 1.0 / T
        self.updates += 1
        # max over the latent placements
        for m in range(self.p.member_ptr[i], self.p.member_ptr[i + 1]):
            ex = self.p.members[m]
            val = self.p._score_scaled(v, scale, ex)
            work += self.p.block_ptr[self.p.example_ptr[ex + 1]] - self.p.block_ptr[self.p.example_ptr[ex]]
            if M < 0 or val > V:
                M = ex
                V = val
        # regularise every block
        for b in range(self.p.num_blocks):
            if self.shrink[b] != 0.0:
                s = scale[b] * (1.0 - rateR * self.shrink[b])
                scale[b] = s
                if not (SCALE_MIN < fabs(s) < SCALE_MAX):
                    self._fold(b)
        # hinge subgradient, or the cache bookkeeping for a negative beyond the margin
        y = self.p.group_y[i]
        if y * V < 1.0:
            self.W[i] = 0
            a = (self.p.J if y > 0 else -1.0) * rateX
            for e in range(self.p.example_ptr[M], self.p.example_ptr[M + 1]):
                b = self.p.block_ids[e]
                n = self.p.block_ptr[e + 1] - self.p.block_ptr[e]
                _axpy(a * self.p.learnmult[b] / scale[b], &self.p.data[0] + self.p.block_ptr[e],
                      v + self.p.block_off[b], n)
                work += n
        elif y < 0:
            if self.W[i] == INCACHE:
                self.W[i] = WAIT
            else:
                self.W[i] += 1
        return work + self.p.num_blocks

    cdef void _run(self, int64_t max_work, int64_t update_limit, int64_t epoch_limit) noexcept nogil:
        cdef int64_t work = 0
        cdef Py_ssize_t n = self.p.num_groups
        while True:
            if self.pos >= n:
                # learn.cc's `while (t < ITER)`: tested only between epochs
                if self.updates >= self.max_updates:
                    self.finished = True
                    return
                self._start_epoch()
            if work >= max_work or self.updates >= update_limit:
                return
            work += self._visit(self.perm[self.pos])
            self.pos += 1
            if self.pos >= n:
                self._end_epoch()
                if self.epochs >= epoch_limit:
                    if self.updates >= self.max_updates:
                        self.finished = True
                    return

    def run(self, int64_t max_work, int64_t update_limit=-1, int64_t epoch_limit=-1):
        """Advance the loop, without the GIL, until a limit is reached.

        Parameters
        ----------
        max_work : int
            Pause once about this many feature values were read or written in
            this call (one float per value; a skipped group counts 1).
        update_limit : int, optional
            Pause before the update that would exceed this total (-1: none).
        epoch_limit : int, optional
            Pause once this many epochs are complete in total (-1: none).

        Returns
        -------
        bool
            True when the run is complete (``max_updates`` reached at an epoch end).

        Raises
        ------
        KeyboardInterrupt
            Pending signals are checked when the chunk ends.
        """
        if update_limit < 0:
            update_limit = 2 ** 62
        if epoch_limit < 0:
            epoch_limit = 2 ** 62
        if not self.finished:
            with nogil:
                self._run(max_work, update_limit, epoch_limit)
        PyErr_CheckSignals()
        return self.finished

    def finish(self):
        """End the run now (a stopping rule fired mid-epoch).

        The epoch under way is closed as learn.cc closes every epoch: the
        lower bounds are projected (it counts as an epoch).
        """
        if self.pos < self.p.num_groups:
            self._end_epoch()
            self.pos = self.p.num_groups
        self.finished = True
