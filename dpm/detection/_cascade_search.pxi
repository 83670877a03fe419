# The star-cascade search of one pyramid level (included by _cascade.pyx, which
# documents the algorithm and its conventions): the packed model and level
# (structs), the responses computed as needed, a part's best placement in its
# window (_part_score) and the stages of every root position (_search).
# Everything here runs without the GIL and trusts its caller (CascadeKernel).

cdef struct Map:
    # A feature map or filter, row-major (h, w, d); a map is read as if
    # padded with (pady, padx) zero cells on each side.
    const double* data
    int h, w, d
    int pady, padx


cdef struct PartK:
    Map full, proj        # filters
    int ax, ay            # probe offsets: probe = (2 rx + ax, 2 ry + ay)
    int memo              # index of the part's memo planes
    const double* cost    # (4, 2S+1): ax k^2, bx k, ay k^2, by k at [k + S]
    const double* dtab    # (2S+1, 2S+1): deformation score -(ax kx^2 + bx kx) - (ay ky^2 + by ky) at [ky + S, S - kx]


cdef struct CompK:
    Map root              # full root filter
    int nparts
    const PartK* parts
    const long long* order      # (2n,)
    const double* t             # (4n,)


cdef struct Memo:
    double* val
    unsigned int* stamp
    unsigned int cur
    long long* off        # (2 m + 1): plane offset of part memo m, projected (1) or full (0)


cdef struct Out:
    int n
    int* pos              # (cap, 3): component, rx, ry
    double* score         # (cap,)
    int* parts            # (cap, maxparts, 2): x, y on the padded part level
    double* blocks        # (cap, maxstages, 2): deformation, filter score per stage; or NULL
    int maxparts, maxstages


cdef struct Stats:
    long long* passed     # (ncomp, maxstages + 1): [0] visited, [s] entered stage s, [2n] completed
    long long nconv[2]    # responses computed: full, projected
    double seconds[2]     # projected part stages, full stages (when timing)
    bint timing


cdef struct Run:
    const CompK* comps
    int ncomp
    int S
    int skipy, skipx      # root positions skipped at each border
    int tminh, tminw      # > 0: probes are valid on the part level's (H - tminh + 1, W - tminw + 1) table
    const double* bias    # per component: added to the projected root response
    double threshold
    Map root              # root level (unpadded map, pady/padx set)
    Map part[2]           # part level: full, projected
    const double* const* scores  # per component: projected root response (no bias)
    const int* shape      # per component: (h, w) of the response
    double* col           # scratch, >= part level width + 1
    int* coly


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + 1e-9 * ts.tv_nsec


cdef extern from "_cascade_dot.h":
    double dpm_cascade_dot(const double* a, const double* b, int n) noexcept nogil
    double dpm_cascade_rows(const double* a, long as_, const double* b, long bs, int rows, int n) noexcept nogil
    void dpm_cascade_rowsk(const double* a, long as_, long dx, const double* b, long bs, int rows, int n,
                           int K, double* out) noexcept nogil
    int dpm_ctz64(unsigned long long v) noexcept nogil
    void dpm_prefetch(const void* p) noexcept nogil
    unsigned long long dpm_need_mask(const unsigned int* stamp, const double* drow, unsigned int cur,
                                     double thr, int n) noexcept nogil
    void dpm_col_min(const double* val, const unsigned int* stamp, unsigned int cur, double qy, double ly,
                     int y, int n, double* col, int* coly) noexcept nogil


cdef inline double _response(const Map* m, const Map* f, int x, int y) noexcept nogil:
    # Filter f placed with its top-left cell at (x, y) of the padded map m.
    cdef int r0 = y - m.pady, c0 = x - m.padx
    cdef int ra = 0 if r0 >= 0 else -r0
    cdef int rb = f.h if r0 + f.h <= m.h else m.h - r0
    cdef int ca = 0 if c0 >= 0 else -c0
    cdef int cb = f.w if c0 + f.w <= m.w else m.w - c0
    cdef int d = m.d
    if ca >= cb or ra >= rb:
        return 0.0
    return dpm_cascade_rows(m.data + ((r0 + ra) * m.w + c0 + ca) * d, <long>m.w * d,
                            f.data + (ra * f.w + ca) * d, <long>f.w * d, rb - ra, (cb - ca) * d)


cdef inline bint _responses(const Map* m, const Map* f, int x, int y, int K, double* out) noexcept nogil:
    # The responses at (x, y) .. (x + K - 1, y), K = 2 .. 4, when no placement is clipped (else False).
    cdef int r0 = y - m.pady, c0 = x - m.padx
    if r0 < 0 or c0 < 0 or r0 + f.h > m.h or c0 + K - 1 + f.w > m.w or f.w <= 0 or f.h <= 0:
        return False
    dpm_cascade_rowsk(m.data + (r0 * m.w + c0) * m.d, <long>m.w * m.d, m.d, f.data, <long>f.w * m.d,
                      f.h, f.w * m.d, K, out)
    return True


cdef double _part_score(Run* run, Memo* memo, Stats* st, const PartK* p, int pca, int px, int py,
                        double defthresh, int* argx, int* argy, double* filt) noexcept nogil:
    # Best placement of part p in the window around probe (px, py); see the header.
    cdef const Map* lev = &run.part[pca]
    cdef const Map* f = &p.proj if pca else &p.full
    cdef int H = lev.h + 2 * lev.pady - f.h + 1
    cdef int W = lev.w + 2 * lev.padx - f.w + 1
    cdef int S = run.S
    cdef const double* qx = p.cost
    cdef const double* lx = p.cost + (2 * S + 1)
    cdef const double* qy = p.cost + 2 * (2 * S + 1)
    cdef const double* ly = p.cost + 3 * (2 * S + 1)
    cdef double* val = memo.val + memo.off[2 * p.memo + pca]
    cdef unsigned int* stamp = memo.stamp + memo.off[2 * p.memo + pca]
    cdef unsigned int cur = memo.cur
    cdef double* col = run.col
    cdef int* coly = run.coly
    cdef int PH = H if run.tminh <= 0 else lev.h + 2 * lev.pady - run.tminh + 1
    cdef int PW = W if run.tminw <= 0 else lev.w + 2 * lev.padx - run.tminw + 1
    cdef int xa, xb, ya, yb, x, y, kx, ky, bx, by, xc, xe
    cdef unsigned long long need, run_
    cdef double got[4]
    cdef int k, j
    cdef const double* drow
    cdef double* rval
    cdef unsigned int* rstamp
    cdef double v, best
    argx[0] = -1
    argy[0] = -1
    filt[0] = -INFINITY
    if px < 0 or py < 0 or px >= PW or py >= PH:
        return -INFINITY
    xa = px - S if px - S > 0 else 0
    xb = px + S if px + S < W - 1 else W - 1
    ya = py - S if py - S > 0 else 0
    yb = py + S if py + S < H - 1 else H - 1
    # The window's memo rows, fetched ahead of the row-by-row passes below.
    for y in range(ya, yb + 1):
        dpm_prefetch(stamp + <long long>y * W + xa)
        dpm_prefetch(stamp + <long long>y * W + xb)
        dpm_prefetch(val + <long long>y * W + xa)
        dpm_prefetch(val + <long long>y * W + xb)
    for x in range(xa, xb + 1):
        col[x - xa] = INFINITY
        coly[x - xa] = -1
    for y in range(ya, yb + 1):
        ky = py - y + S
        rval = val + <long long>y * W
        rstamp = stamp + <long long>y * W
        # The responses of this row that are not known yet and pass deformation pruning (a bit
        # mask per run of 64 columns, built without branches) ...
        drow = p.dtab + ky * (2 * S + 1) + S - px   # drow[x]: deformation score at column x
        for xc in range(xa, xb + 1, 64):
            xe = xc + 64 if xc + 64 <= xb + 1 else xb + 1
            need = dpm_need_mask(rstamp + xc, drow + xc, cur, defthresh, xe - xc)
            while need:
                x = xc + dpm_ctz64(need)
                # Runs of up to 4 adjacent needed responses at once (the filter's loads shared).
                run_ = (need >> (x - xc)) & 15
                k = 4 if run_ == 15 else (3 if run_ & 7 == 7 else (2 if run_ & 3 == 3 else 1))
                if k == 1 or not _responses(lev, f, x, y, k, got):
                    k = 1
                    got[0] = _response(lev, f, x, y)
                for j in range(k):
                    rval[x + j] = got[j]
                    rstamp[x + j] = cur
                    need &= need - 1
                st.nconv[pca] += k
    # ... then every known one competes for its column's minimum, row by row (branch-free: the
    # same comparisons in the same order as one loop doing both; a separate pass, so that the
    # window's vector loads do not wait on the narrow stores of responses just computed).
    for y in range(ya, yb + 1):
        ky = py - y + S
        dpm_col_min(val + <long long>y * W + xa, stamp + <long long>y * W + xa, cur, qy[ky], ly[ky], y,
                    xb - xa + 1, col, coly)
    best = INFINITY
    bx = -1
    by = -1
    for x in range(xa, xb + 1):
        if coly[x - xa] < 0:
            continue
        kx = px - x + S
        v = (col[x - xa] + qx[kx]) + lx[kx]
        if v < best:
            best = v
            bx = x
            by = coly[x - xa]
    if bx < 0:
        return -INFINITY
    argx[0] = bx
    argy[0] = by
    filt[0] = val[<long long>by * W + bx]
    return -best


cdef struct Work:
    # The root positions of one component in a level, one entry per visited position (column-major
    # order, as visited), and the hypotheses' state between the stage passes.
    int* rx
    int* ry
    double* score         # the hypothesis's score so far
    double* pscore        # (cap, maxparts + 1): projected root response [0], projected part scores [i]
    int* arg              # (cap, maxparts, 2): x, y of each part's full-filter placement
    double* blk           # (cap, maxstages, 2): deformation, filter score per stage; or NULL
    int* alive            # (cap,): entries still in the cascade, in visiting order


cdef inline void _stage(Run* run, Memo* memo, Stats* st, Work* w, const CompK* comp, int stage, int n,
                        int j, int ms, int mp) noexcept nogil:
    # Stage `stage` of the hypothesis at entry j (the stage loop of cascade.cc's, for one position).
    cdef int part = <int>comp.order[stage]
    cdef int pca = stage < n
    cdef int rx = w.rx[j], ry = w.ry[j], bx_, by_
    cdef double score = w.score[j], full, ps, filt
    cdef double* pscore = w.pscore + <long long>j * (mp + 1)
    cdef const PartK* p
    if part == 0:
        full = _response(&run.root, &comp.root, rx, ry)
        score += full - pscore[0]
        if w.blk != NULL:
            w.blk[2 * (<long long>j * ms + stage)] = 0.0
            w.blk[2 * (<long long>j * ms + stage) + 1] = full
    else:
        p = &comp.parts[part - 1]
        ps = _part_score(run, memo, st, p, pca, 2 * rx + p.ax, 2 * ry + p.ay,
                         comp.t[2 * stage] - score, &bx_, &by_, &filt)
        if pca:
            pscore[part] = ps
            score += ps
        else:
            score += ps - pscore[part]
            w.arg[2 * (<long long>j * mp + part - 1)] = bx_
            w.arg[2 * (<long long>j * mp + part - 1) + 1] = by_
        if w.blk != NULL:
            w.blk[2 * (<long long>j * ms + stage)] = ps - filt
            w.blk[2 * (<long long>j * ms + stage) + 1] = filt
    w.score[j] = score


cdef void _search(Run* run, Memo* memo, Out* out, Stats* st, Work* w) noexcept nogil:
    # Stage by stage: each pass takes every hypothesis still in the cascade through one stage, in the
    # order the positions were visited.  Each memo plane belongs to one stage of one component (a
    # part's projected or full filter), so it sees the same probes in the same order as when each
    # position runs through all its stages before the next: the same responses, pruning and scores,
    # bit for bit, with one plane and one filter in use at a time.
    cdef int c, n, nst, stage, rx, ry, i, j, k, na, m, mp = out.maxparts
    cdef int x0, x1, y0, y1, hs, ws, ms = out.maxstages
    cdef const CompK* comp
    cdef const double* sc
    cdef const double* t
    cdef double r, thr, t0 = 0.0
    cdef long long* passed
    for c in range(run.ncomp):
        comp = &run.comps[c]
        n = comp.nparts + 1
        nst = 2 * n
        t = comp.t
        sc = run.scores[c]
        hs = run.shape[2 * c]
        ws = run.shape[2 * c + 1]
        passed = st.passed + c * (ms + 1)
        x0 = run.skipx
        y0 = run.skipy
        x1 = ws - x0
        y1 = hs - y0
        # Stage 0: the projected root response (plus the bias) at every visited position.
        na = 0
        for rx in range(x0, x1):
            for ry in range(y0, y1):
                r = sc[ry * ws + rx]
                w.rx[na] = rx
                w.ry[na] = ry
                w.score[na] = r + run.bias[c]
                w.pscore[<long long>na * (mp + 1)] = r
                if w.blk != NULL:
                    w.blk[2 * <long long>na * ms] = 0.0
                    w.blk[2 * <long long>na * ms + 1] = r
                w.alive[na] = na
                na += 1
        passed[0] += na
        for stage in range(1, nst):
            # Hypothesis pruning: a hypothesis enters the stage unless its score is below t[2s - 1].
            thr = t[2 * stage - 1]
            m = 0
            for i in range(na):
                j = w.alive[i]
                if not (w.score[j] < thr):
                    w.alive[m] = j
                    m += 1
            na = m
            passed[stage] += na
            if na == 0:
                break
            if st.timing:
                t0 = _now()
            for i in range(na):
                _stage(run, memo, st, w, comp, stage, n, w.alive[i], ms, mp)
            if st.timing:
                st.seconds[0 if stage < n else 1] += _now() - t0
        if na == 0:
            continue
        passed[nst] += na
        for i in range(na):
            j = w.alive[i]
            if w.score[j] > run.threshold:
                k = out.n
                out.pos[3 * k] = c
                out.pos[3 * k + 1] = w.rx[j]
                out.pos[3 * k + 2] = w.ry[j]
                out.score[k] = w.score[j]
                for m in range(comp.nparts):
                    out.parts[2 * (k * mp + m)] = w.arg[2 * (<long long>j * mp + m)]
                    out.parts[2 * (k * mp + m) + 1] = w.arg[2 * (<long long>j * mp + m) + 1]
                if out.blocks != NULL:
                    for m in range(2 * nst):
                        out.blocks[2 * k * ms + m] = w.blk[2 * <long long>j * ms + m]
                out.n += 1
