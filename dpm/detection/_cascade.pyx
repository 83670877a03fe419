# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#
# Star-cascade search of one pyramid level: a port of the algorithm of
# voc-release5 ``star-cascade/cascade.cc`` (Felzenszwalb, Girshick,
# McAllester; MIT-style licence, see the release's COPYING), for this
# project's release-3.1 models and pyramids.  Spec star-cascade.md §C.5.
#
# For each component and each visited root position (rx, ry) of a root
# level (the projected root response, computed densely by the caller, plus
# the component's bias is stage 0), the stages s = 1 .. 2n-1 of the
# cascade's order (n = 1 + number of parts):
#   - stage s is entered only if score >= t[2s-1] (hypothesis pruning);
#   - order[s] = i > 0 places part i (projected filters while s < n, full
#     filters after): its score is the best, over the placements (x, y) of
#     the part level within +-S cells of the probe (2 rx + ax, 2 ry + ay)
#     and clipped to the part level's valid placements, of
#         R(x, y) - deformation cost(probe - (x, y)),
#     where R is the filter response; a placement whose response is not yet
#     known and whose deformation score is below t[2s] - score is skipped
#     (deformation pruning); responses are computed as needed (adjacent
#     needed ones of a row together, each the same sum as alone) and
#     memoised per (level, filter, placement), so a later hypothesis uses
#     every response computed so far, pruned or not (cascade.cc's rule);
#   - a projected part's score is added; a full part's score replaces its
#     projected one; order[s] = 0 (stage n) replaces the projected root
#     response by the full root's at (rx, ry).
# A hypothesis that completes every stage with score > threshold is a
# detection; its part placements are the argmaxes of its full-filter stages.
#
# Conventions (those of the exact detector, dpm/detection.py, so that scores
# and placements are comparable): positions are 0-based in the zero-padded
# levels (root level padded by (pady, padx), part level by twice that; the
# padding is virtual here, the feature maps are read unpadded); the
# deformation cost of a part at (x, y) for probe (px, py) is
#     ax*kx^2 + bx*kx + ay*ky^2 + by*ky,  kx = px - x, ky = py - y,
# and the window maximum is evaluated as dt.cc evaluates it on the negated
# responses: per column the first strict minimum of (-R + ay ky^2) + by ky
# over y, then the first strict minimum over x of (that + ax kx^2) + bx kx,
# so with an unbounded window and no pruning the value and the placement are
# exactly the distance transform's.  A probe outside the part's response map
# scores -inf, as in the exact detector (cascade.cc would read outside its
# arrays there).
#
# Order of work: stage by stage.  Each pass takes every hypothesis still in
# the cascade through one stage, in the order the root positions were
# visited (x outer, y inner).  Each memo plane belongs to one stage of one
# component, so it sees the same probes in the same order as when each
# position runs through all its stages before the next: the same responses,
# placements and scores.  A part's stage is three passes over its
# hypotheses (_part_pass): the first hypothesis that needs each response
# (the deformation thresholds are known before the stage), the needed
# responses row by row, then each hypothesis's window maximum over the
# responses needed by it or by an earlier hypothesis, which is what the
# sequential rule has computed by its turn.
#
# Precision: the full filters, the full levels and their responses in
# float64; a response is summed in a fixed order (rows of the filter in
# order, each row one contiguous run of w*d products, see _cascade_dot.h),
# so it agrees with the exact detector's float64 responses to rounding
# (about 1e-13).  The projected maps and filters are float64 (the same
# order) or float32 (summed in float32 in a fixed order, see
# _cascade_dot.h), as the caller gives them; projected scores only decide
# pruning, and a survivor's score is its full score either way.
#
# Memoisation: cascade.cc also memoises each part score per (level, part,
# probe); in a release-3.1 model a probe belongs to one root position and a
# part to one component, so each entry would be written once and read only
# for the detection's part boxes: the argmaxes are kept per hypothesis
# instead.  Response memos are flat planes per (filter, projected/full)
# with, per entry, the id of the hypothesis that first needed it (ids grow
# from pass to pass), so no plane is cleared between passes or levels; the
# components, searched one after the other, use the same memory.

from libc.stdlib cimport malloc, free
from libc.string cimport memset
from libc.math cimport INFINITY
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

import numpy as np


include "_cascade_search.pxi"


# Bounds of the fixed-size scratch arrays in _search.
MAX_PARTS = 63


cdef Map _map(a, int pady, int padx, bint single=False):
    # (h, w, d) C-contiguous: float64, or float32 read in single precision when ``single`` (projected
    # maps and filters of single-precision pyramids).  A wrong dtype raises ValueError.
    cdef double[:, :, ::1] d64
    cdef float[:, :, ::1] d32
    cdef Map m
    m.data = NULL
    m.data32 = NULL
    if single:
        d32 = a
        if d32.shape[0] * d32.shape[1] * d32.shape[2] > 0:
            m.data32 = &d32[0, 0, 0]
    else:
        d64 = a
        if d64.shape[0] * d64.shape[1] * d64.shape[2] > 0:
            m.data = &d64[0, 0, 0]
    m.h = <int>a.shape[0]
    m.w = <int>a.shape[1]
    m.d = <int>a.shape[2]
    m.pady = pady
    m.padx = padx
    return m


cdef class CascadeKernel:
    """A model and its cascade packed for :meth:`level` (built by ``dpm.cascade.detect``).

    ``components``: one dict per component with ``root`` (full root filter,
    (h, w, d) float64 C-contiguous), ``bias``, ``order`` ((2n,) int64),
    ``thresholds`` ((4n,) float64) and ``parts``: dicts with ``full`` (float64)
    and ``proj`` (float64 or float32, all alike) filters, ``anchor`` ((ax, ay), the 0-based probe offsets) and
    ``cost`` ((4, 2 window + 1) float64, see the module header).  ``padding``
    is the root level's (pady, padx) of virtual zero padding (the part
    level's is twice that); (0, 0) for levels that come padded, as release
    5's do.  ``border``: the (y, x) root positions skipped at each border
    with ``skip_border`` (default ``ceil(padding / 2)``, cascade.cc's rule).
    ``table``: None (a probe outside the part filter's placements scores
    -inf, release 3.1's response maps) or (hmin, wmin): probes are valid on
    the part level's (H - hmin + 1, W - wmin + 1) table, release 5's tables
    sized by the model's smallest filter, the window clipped to the part's
    placements.
    Everything is trusted: the Python wrapper validates it.  ``blocks`` records the per-stage scores of each
    detection; ``timing`` measures the part stages (adds clock reads).
    """

    cdef object _keep
    cdef CompK* comps
    cdef PartK* parts
    cdef double* dtabs
    cdef int ncomp, nmemo, S, pady, padx, maxparts, maxstages, skipy, skipx, tminh, tminw
    cdef bint skip_border, want_blocks, proj32
    cdef double threshold
    cdef double* memo_val
    cdef unsigned int* memo_stamp
    cdef long long memo_cap
    cdef unsigned int stamp
    cdef Stats st
    cdef object _passed
    cdef object _bias

    def __cinit__(self, components, *, int window, bint skip_border, double threshold, padding,
                  bint blocks=False, bint timing=False, border=None, table=None):
        cdef int c, j, m = 0, nk, kx, ky
        cdef double* dt
        cdef double[:, ::1] cost
        cdef long long[::1] order
        cdef double[::1] t
        self.ncomp = len(components)
        self.nmemo = sum(len(comp["parts"]) for comp in components)
        self.S = window
        self.skip_border = skip_border
        self.threshold = threshold
        self.pady, self.padx = int(padding[0]), int(padding[1])
        if border is None:
            border = ((self.pady + 1) // 2, (self.padx + 1) // 2)
        self.skipy, self.skipx = (int(border[0]), int(border[1])) if skip_border else (0, 0)
        self.tminh, self.tminw = (0, 0) if table is None else (int(table[0]), int(table[1]))
        self._bias = np.array([float(comp["bias"]) for comp in components] + [0.0], dtype=np.float64)
        self.want_blocks = blocks
        self.maxparts = max([len(comp["parts"]) for comp in components] + [0])
        self.maxstages = 2 * (self.maxparts + 1)
        if self.maxparts > MAX_PARTS:
            raise ValueError(f"a component has more than {MAX_PARTS} parts")
        self._keep = []
        self.comps = <CompK*>malloc(max(1, self.ncomp) * sizeof(CompK))
        self.parts = <PartK*>malloc(max(1, self.nmemo) * sizeof(PartK))
        nk = 2 * window + 1
        self.dtabs = <double*>malloc(max(1, <long long>self.nmemo * nk * nk) * sizeof(double))
        self.memo_val = NULL
        self.memo_stamp = NULL
        self.memo_cap = 0
        self.stamp = 1
        if self.comps == NULL or self.parts == NULL or self.dtabs == NULL:
            raise MemoryError()
        for c, comp in enumerate(components):
            self.comps[c].root = _map(comp["root"], 0, 0)
            self.comps[c].nparts = len(comp["parts"])
            self.comps[c].parts = &self.parts[m]
            order = comp["order"]
            t = comp["thresholds"]
            self.comps[c].order = &order[0]
            self.comps[c].t = &t[0]
            self._keep += [comp["root"], comp["order"], comp["thresholds"]]
            for j, part in enumerate(comp["parts"]):
                self.parts[m].full = _map(part["full"], 0, 0)
                if m == 0:
                    self.proj32 = part["proj"].dtype == np.float32
                elif (part["proj"].dtype == np.float32) != self.proj32:
                    raise ValueError("the projected filters must all be float32 or all float64")
                self.parts[m].proj = _map(part["proj"], 0, 0, self.proj32)
                self.parts[m].ax = int(part["anchor"][0])
                self.parts[m].ay = int(part["anchor"][1])
                self.parts[m].memo = m
                cost = part["cost"]
                self.parts[m].cost = &cost[0, 0]
                dt = self.dtabs + <long long>m * nk * nk
                for ky in range(nk):
                    for kx in range(nk):
                        dt[ky * nk + nk - 1 - kx] = -(cost[0, kx] + cost[1, kx]) - (cost[2, ky] + cost[3, ky])
                self.parts[m].dtab = dt
                self._keep += [part["full"], part["proj"], part["cost"]]
                m += 1
        self._passed = np.zeros((self.ncomp, self.maxstages + 1), dtype=np.int64)
        self.st.nconv[0] = self.st.nconv[1] = 0
        self.st.seconds[0] = self.st.seconds[1] = 0.0
        self.st.timing = timing

    def __dealloc__(self):
        free(self.comps)
        free(self.parts)
        free(self.dtabs)
        free(self.memo_val)
        free(self.memo_stamp)

    cdef int _memo_layout(self, Map* part, long long[::1] off, int[::1] width) except -1:
        # Planes for this level's part map; grows the memo when needed.  The components are searched
        # one after the other and an entry counts only for the stage pass that stamped it, so every
        # component's planes start at the memo's start: the memo is the largest component's planes.
        cdef long long total = 0, used, need
        cdef int c, j, m, pca, H, W
        cdef const Map* f
        for c in range(self.ncomp):
            used = 0
            for j in range(self.comps[c].nparts):
                m = self.comps[c].parts[j].memo
                for pca in range(2):
                    f = &self.parts[m].proj if pca else &self.parts[m].full
                    H = part.h + 2 * part.pady - f.h + 1
                    W = part.w + 2 * part.padx - f.w + 1
                    off[2 * m + pca] = used
                    used += max(H, 0) * <long long>max(W, 0)
                    width[m] = max(W, 0)
            total = used if used > total else total
        if total > self.memo_cap:
            free(self.memo_val)
            free(self.memo_stamp)
            self.memo_val = <double*>malloc(max(total, 1) * sizeof(double))
            self.memo_stamp = <unsigned int*>malloc(max(total, 1) * sizeof(unsigned int))
            if self.memo_val == NULL or self.memo_stamp == NULL:
                self.memo_cap = 0
                raise MemoryError()
            memset(self.memo_stamp, 0, max(total, 1) * sizeof(unsigned int))
            self.memo_cap = total
            self.stamp = 1
        return 0

    def level(self, root, part, part_proj, scores, bias=None):
        """Detections of one root level.

        ``root``: the root level's features (h, w, d), unpadded; ``part``
        and ``part_proj``: the part level's features and their projection,
        unpadded (float64; ``part_proj`` of the projected filters' dtype); ``scores``: per component, the projected root filter's
        response over the padded root level (no bias); ``bias``: per
        component, what this level adds to every hypothesis's score instead
        of the components' ``bias`` (release 5: offset and scale prior,
        which depend on the level).  Returns ``(pos,
        score, parts, blocks)``: ``pos`` (N, 3) int32 component, rx, ry;
        ``score`` (N,); ``parts`` (N, P, 2) int32 x, y of each part on the
        padded part level; ``blocks`` (N, 2 (P + 1), 2) deformation and
        filter score of each stage, or None.
        """
        cdef Run run
        cdef Memo memo
        cdef Out out
        cdef Work work
        cdef int c, cap = 0, widest, most = 1
        cdef long long[::1] off = np.empty(2 * max(1, self.nmemo), dtype=np.int64)
        cdef int[::1] width = np.zeros(max(1, self.nmemo), dtype=np.intc)
        cdef int[::1] shape = np.empty(2 * max(1, self.ncomp), dtype=np.intc)
        cdef double[:, ::1] s
        cdef long long[:, ::1] passed = self._passed
        run.comps = self.comps
        run.ncomp = self.ncomp
        run.S = self.S
        run.skipy = self.skipy
        run.skipx = self.skipx
        run.tminh = self.tminh
        run.tminw = self.tminw
        cdef double[::1] biasv = (self._bias if bias is None else
                                  np.ascontiguousarray(list(bias) + [0.0], dtype=np.float64))
        run.bias = &biasv[0]
        run.threshold = self.threshold
        run.root = _map(root, self.pady, self.padx)
        run.part[0] = _map(part, 2 * self.pady, 2 * self.padx)
        run.part[1] = _map(part_proj, 2 * self.pady, 2 * self.padx, part_proj.dtype == np.float32)
        if self.nmemo and (part_proj.dtype == np.float32) != self.proj32:
            raise ValueError("part_proj and the projected filters must have the same precision")
        keep = [np.ascontiguousarray(x, dtype=np.float64) for x in scores]
        ptrs = np.empty(max(1, self.ncomp), dtype=np.uintp)
        for c in range(self.ncomp):
            s = keep[c]
            shape[2 * c] = <int>s.shape[0]
            shape[2 * c + 1] = <int>s.shape[1]
            ptrs[c] = <size_t>&s[0, 0] if s.shape[0] * s.shape[1] > 0 else 0
            cap += <int>(s.shape[0] * s.shape[1])
            most = max(most, <int>(s.shape[0] * s.shape[1]))
        cdef size_t[::1] pv = ptrs
        run.scores = <const double* const*>&pv[0]
        run.shape = &shape[0]
        self._memo_layout(&run.part[0], off, width)
        memo.val = self.memo_val
        memo.stamp = self.memo_stamp
        memo.next = self.stamp
        memo.cap = self.memo_cap
        memo.off = &off[0]
        widest = max(list(width) + [1]) + 1
        col = np.empty(widest, dtype=np.float64)
        coly = np.empty(widest, dtype=np.intc)
        cdef double[::1] colv = col
        cdef int[::1] colyv = coly
        run.col = &colv[0]
        run.coly = &colyv[0]
        pos = np.empty((max(cap, 1), 3), dtype=np.intc)
        score = np.empty(max(cap, 1), dtype=np.float64)
        partpos = np.empty((max(cap, 1), max(self.maxparts, 1), 2), dtype=np.intc)
        blocks = np.empty((max(cap, 1) if self.want_blocks else 1, self.maxstages, 2), dtype=np.float64)
        cdef int[:, ::1] posv = pos
        cdef double[::1] scorev = score
        cdef int[:, :, ::1] partv = partpos
        cdef double[:, :, ::1] blockv = blocks
        out.n = 0
        out.pos = &posv[0, 0]
        out.score = &scorev[0]
        out.parts = &partv[0, 0, 0]
        out.blocks = &blockv[0, 0, 0] if self.want_blocks else NULL
        out.maxparts = max(self.maxparts, 1)
        out.maxstages = self.maxstages
        self.st.passed = &passed[0, 0]
        mp = max(self.maxparts, 1)
        cdef int[::1] wrx = np.empty(most, dtype=np.intc)
        cdef int[::1] wry = np.empty(most, dtype=np.intc)
        cdef int[::1] walive = np.empty(most, dtype=np.intc)
        cdef double[::1] wscore = np.empty(most, dtype=np.float64)
        cdef double[::1] wpscore = np.empty(most * (mp + 1), dtype=np.float64)
        cdef int[::1] warg = np.empty(most * mp * 2, dtype=np.intc)
        cdef double[::1] wblk = np.empty(most * self.maxstages * 2 if self.want_blocks else 1, dtype=np.float64)
        work.rx = &wrx[0]
        work.ry = &wry[0]
        work.alive = &walive[0]
        work.score = &wscore[0]
        work.pscore = &wpscore[0]
        work.arg = &warg[0]
        work.blk = &wblk[0] if self.want_blocks else NULL
        with nogil:
            _search(&run, &memo, &out, &self.st, &work)
        self.stamp = memo.next
        k = out.n
        return (pos[:k], score[:k], partpos[:k, :self.maxparts],
                blocks[:k] if self.want_blocks else None)

    @property
    def passed(self):
        """(components, 2 (P + 1) + 1) int64: root positions visited ([:, 0]), that entered stage s
        ([:, s]), that completed every stage ([:, 2 n]); summed over the levels searched."""
        return self._passed.copy()

    @property
    def responses(self):
        """Part filter responses computed: (full, projected)."""
        return int(self.st.nconv[0]), int(self.st.nconv[1])

    @property
    def seconds(self):
        """Time in the projected part stages and in the full stages (0 unless ``timing``)."""
        return float(self.st.seconds[0]), float(self.st.seconds[1])

    @property
    def next_id(self):
        """The id the next stage pass gives its first hypothesis (ids only grow; the memo stamps are
        cleared when they would reach 2^31).  Settable, to test that wrap-around."""
        return int(self.stamp)

    @next_id.setter
    def next_id(self, unsigned int value):
        if value < 1 or value >= 0x7fffffff:
            raise ValueError(f"next_id must be in 1 .. 2^31 - 2, got {value}")
        if value < self.stamp:
            # smaller ids than the stamps hold would read old entries as this pass's
            if self.memo_stamp != NULL:
                memset(self.memo_stamp, 0, self.memo_cap * sizeof(unsigned int))
        self.stamp = value
