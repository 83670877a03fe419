# The star-cascade search of one pyramid level (included by _cascade.pyx, which
# documents the algorithm and its conventions): the packed model and level
# (structs), one response (_response), the full root's stage (_root_pass), a
# part's stage for every hypothesis in it (_part_pass: first needers, needed
# responses, window maxima) and the stages in order (_search).
# Everything here runs without the GIL and trusts its caller (CascadeKernel).

cdef struct Map:
    # A feature map or filter, row-major (h, w, d); a map is read as if
    # padded with (pady, padx) zero cells on each side.
    const double* data
    const float* data32   # single-precision data instead (data NULL): projected maps and filters
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
    unsigned int* stamp   # per entry: the id of the hypothesis that first needed it (see _part_pass)
    unsigned int next     # the next free id (ids only grow; all below 2^31)
    long long cap         # entries of val and stamp
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
    double dpm_cascade_rows(const double* a, long as_, const double* b, long bs, int rows, int n) noexcept nogil
    void dpm_cascade_span(const double* a, long as_, long dx, const double* b, long bs, int rows, int n,
                          int L, double* out) noexcept nogil
    void dpm_cascade_span32(const float* a, long as_, long dx, const float* b, long bs, int rows, int n,
                            int L, double* out) noexcept nogil


cdef extern from "_cascade_memo.h":
    int dpm_ctz64(unsigned long long v) noexcept nogil
    void dpm_prefetch(const void* p) noexcept nogil
    void dpm_claim(unsigned int* first, const double* drow, unsigned int base, unsigned int id, double thr,
                   int n) noexcept nogil
    unsigned long long dpm_claimed_mask(const unsigned int* first, unsigned int base, int n) noexcept nogil
    void dpm_col_min_known(const double* val, const unsigned int* first, unsigned int base, unsigned int upto,
                           double qy, double ly, int y, int n, double* col, int* coly) noexcept nogil


cdef inline double _response(const Map* m, const Map* f, int x, int y) noexcept nogil:
    # Filter f placed with its top-left cell at (x, y) of the padded map m.
    cdef int r0 = y - m.pady, c0 = x - m.padx
    cdef int ra = 0 if r0 >= 0 else -r0
    cdef int rb = f.h if r0 + f.h <= m.h else m.h - r0
    cdef int ca = 0 if c0 >= 0 else -c0
    cdef int cb = f.w if c0 + f.w <= m.w else m.w - c0
    cdef int d = m.d
    cdef double out
    if ca >= cb or ra >= rb:
        return 0.0
    if f.data32 != NULL:
        dpm_cascade_span32(m.data32 + ((r0 + ra) * m.w + c0 + ca) * d, <long>m.w * d,
                           d, f.data32 + (ra * f.w + ca) * d, <long>f.w * d, rb - ra, (cb - ca) * d, 1, &out)
        return out
    return dpm_cascade_rows(m.data + ((r0 + ra) * m.w + c0 + ca) * d, <long>m.w * d,
                            f.data + (ra * f.w + ca) * d, <long>f.w * d, rb - ra, (cb - ca) * d)


cdef inline unsigned int _reserve(Memo* memo, int count) noexcept nogil:
    # `count` fresh hypothesis ids, above every id in the stamps (which are cleared when ids would
    # reach 2^31; no plane is in use between passes).
    cdef unsigned int base
    if <long long>memo.next + count >= 0x7fffffff:
        memset(memo.stamp, 0, memo.cap * sizeof(unsigned int))
        memo.next = 1
    base = memo.next
    memo.next += <unsigned int>count
    return base


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


cdef void _root_pass(Run* run, Work* w, const CompK* comp, int stage, int na, int ms, int mp) noexcept nogil:
    # The full root's stage: its response at each hypothesis's root position replaces the projected one.
    cdef int i, j
    cdef double full
    for i in range(na):
        j = w.alive[i]
        full = _response(&run.root, &comp.root, w.rx[j], w.ry[j])
        w.score[j] += full - w.pscore[<long long>j * (mp + 1)]
        if w.blk != NULL:
            w.blk[2 * (<long long>j * ms + stage)] = 0.0
            w.blk[2 * (<long long>j * ms + stage) + 1] = full


cdef struct Plane:
    # A part filter's placements on its level: H x W placements, probes valid on PH x PW (see Run),
    # windows of +-S.
    int S, H, W, PH, PW


cdef struct Window:
    # A hypothesis's probe (px, py) on the part level and the placements xa..xb, ya..yb within S of it.
    int px, py, xa, xb, ya, yb


cdef inline bint _window(Window* win, const Plane* g, const PartK* p, int rx, int ry) noexcept nogil:
    # The window of the hypothesis at root position (rx, ry); False (and no window) if its probe is off
    # the valid probes.
    cdef int px = 2 * rx + p.ax, py = 2 * ry + p.ay
    win.px = px
    win.py = py
    if px < 0 or py < 0 or px >= g.PW or py >= g.PH:
        return False
    win.xa = px - g.S if px - g.S > 0 else 0
    win.xb = px + g.S if px + g.S < g.W - 1 else g.W - 1
    win.ya = py - g.S if py - g.S > 0 else 0
    win.yb = py + g.S if py + g.S < g.H - 1 else g.H - 1
    return True


cdef void _part_pass(Run* run, Memo* memo, Stats* st, Work* w, const CompK* comp, int stage, int n, int na,
                     int ms, int mp) noexcept nogil:
    # A part's stage for every hypothesis in it (alive[0 .. na-1], in visiting order), in three passes.
    # The part's memo plane is used by this stage alone, and every hypothesis's deformation threshold
    # is known before the stage, so the responses known to hypothesis i in the sequential rule (those
    # needed by hypotheses 0 .. i: unknown at their turn and passing their deformation test) are the
    # entries whose first needer is at most i.  Pass 1 records each entry's first needer; pass 2
    # computes the needed responses, row by row; pass 3 takes each hypothesis's window maximum over
    # the entries known to it.  Same responses, maxima and placements as one hypothesis at a time.
    cdef int part = <int>comp.order[stage]
    cdef int pca = stage < n
    cdef const PartK* p = &comp.parts[part - 1]
    cdef const Map* lev = &run.part[pca]
    cdef const Map* f = &p.proj if pca else &p.full
    cdef Plane g
    g.S = run.S
    g.H = lev.h + 2 * lev.pady - f.h + 1
    g.W = lev.w + 2 * lev.padx - f.w + 1
    g.PH = g.H if run.tminh <= 0 else lev.h + 2 * lev.pady - run.tminh + 1
    g.PW = g.W if run.tminw <= 0 else lev.w + 2 * lev.padx - run.tminw + 1
    cdef int S = g.S, W = g.W
    cdef const double* qx = p.cost
    cdef const double* lx = p.cost + (2 * S + 1)
    cdef const double* qy = p.cost + 2 * (2 * S + 1)
    cdef const double* ly = p.cost + 3 * (2 * S + 1)
    cdef double* val = memo.val + memo.off[2 * p.memo + pca]
    cdef unsigned int* first = memo.stamp + memo.off[2 * p.memo + pca]
    cdef double* col = run.col
    cdef int* coly = run.coly
    cdef unsigned int base = _reserve(memo, na)
    cdef Window win
    cdef int i, j, x, y, ky, kx, bx, by, xc, xe, k, q, r0, lo, hi
    cdef bint inside
    cdef int x0 = g.W, x1 = -1, y0 = g.H, y1 = -1
    cdef unsigned long long need
    cdef double thr, v, best, ps, filt
    cdef double* rval
    cdef unsigned int* rfirst
    cdef double* pscore
    # Pass 1: the first needer of each entry.
    for i in range(na):
        j = w.alive[i]
        if not _window(&win, &g, p, w.rx[j], w.ry[j]):
            continue
        thr = comp.t[2 * stage] - w.score[j]
        for y in range(win.ya, win.yb + 1):
            dpm_prefetch(first + <long long>y * W + win.xa)
            dpm_prefetch(first + <long long>y * W + win.xb)
        for y in range(win.ya, win.yb + 1):
            ky = win.py - y + S
            # p.dtab row ky at [S - px + x]: the deformation score at column x
            dpm_claim(first + <long long>y * W + win.xa, p.dtab + ky * (2 * S + 1) + S - win.px + win.xa, base,
                      base + i, thr, win.xb - win.xa + 1)
        x0 = win.xa if win.xa < x0 else x0
        x1 = win.xb if win.xb > x1 else x1
        y0 = win.ya if win.ya < y0 else y0
        y1 = win.yb if win.yb > y1 else y1
    # Pass 2: the needed responses, row by row; each run of adjacent ones that lies inside the map at
    # once (the filter's loads shared by up to 4), the others one at a time.
    for y in range(y0, y1 + 1):
        rval = val + <long long>y * W
        rfirst = first + <long long>y * W
        r0 = y - lev.pady
        inside = r0 >= 0 and r0 + f.h <= lev.h and f.w > 0 and f.h > 0
        for xc in range(x0, x1 + 1, 64):
            xe = xc + 64 if xc + 64 <= x1 + 1 else x1 + 1
            need = dpm_claimed_mask(rfirst + xc, base, xe - xc)
            while need:
                x = xc + dpm_ctz64(need)
                k = dpm_ctz64(~(need >> (x - xc))) if (need >> (x - xc)) != 0xffffffffffffffffULL else 64
                # the run x .. x + k - 1; its placements inside the map: lo .. hi - 1
                lo = x if x - lev.padx >= 0 else lev.padx
                hi = x + k if x + k - 1 - lev.padx + f.w <= lev.w else lev.w - f.w + 1 + lev.padx
                if not inside or hi <= lo:
                    lo = hi = x + k
                for q in range(x, lo):
                    rval[q] = _response(lev, f, q, y)
                if hi > lo and f.data32 != NULL:
                    dpm_cascade_span32(lev.data32 + (r0 * lev.w + lo - lev.padx) * lev.d, <long>lev.w * lev.d,
                                       lev.d, f.data32, <long>f.w * lev.d, f.h, f.w * lev.d, hi - lo, rval + lo)
                elif hi > lo:
                    dpm_cascade_span(lev.data + (r0 * lev.w + lo - lev.padx) * lev.d, <long>lev.w * lev.d, lev.d,
                                     f.data, <long>f.w * lev.d, f.h, f.w * lev.d, hi - lo, rval + lo)
                for q in range(hi, x + k):
                    rval[q] = _response(lev, f, q, y)
                st.nconv[pca] += k
                need = (need >> (x - xc + k) << (x - xc + k)) if x - xc + k < 64 else 0
    # Pass 3: each hypothesis's best placement among the entries known to it.  Per column the first
    # strict minimum over y of (-R + ay ky^2) + by ky, then over x of (that + ax kx^2) + bx kx.
    for i in range(na):
        j = w.alive[i]
        bx = -1
        by = -1
        filt = -INFINITY
        ps = -INFINITY
        if _window(&win, &g, p, w.rx[j], w.ry[j]):
            for y in range(win.ya, win.yb + 1):
                dpm_prefetch(first + <long long>y * W + win.xa)
                dpm_prefetch(first + <long long>y * W + win.xb)
                dpm_prefetch(val + <long long>y * W + win.xa)
                dpm_prefetch(val + <long long>y * W + win.xb)
            for x in range(win.xa, win.xb + 1):
                col[x - win.xa] = INFINITY
                coly[x - win.xa] = -1
            for y in range(win.ya, win.yb + 1):
                ky = win.py - y + S
                dpm_col_min_known(val + <long long>y * W + win.xa, first + <long long>y * W + win.xa, base, i,
                                  qy[ky], ly[ky], y, win.xb - win.xa + 1, col, coly)
            best = INFINITY
            for x in range(win.xa, win.xb + 1):
                if coly[x - win.xa] < 0:
                    continue
                kx = win.px - x + S
                v = (col[x - win.xa] + qx[kx]) + lx[kx]
                if v < best:
                    best = v
                    bx = x
                    by = coly[x - win.xa]
            if bx >= 0:
                filt = val[<long long>by * W + bx]
                ps = -best
        pscore = w.pscore + <long long>j * (mp + 1)
        if pca:
            pscore[part] = ps
            w.score[j] += ps
        else:
            w.score[j] += ps - pscore[part]
            w.arg[2 * (<long long>j * mp + part - 1)] = bx
            w.arg[2 * (<long long>j * mp + part - 1) + 1] = by
        if w.blk != NULL:
            w.blk[2 * (<long long>j * ms + stage)] = ps - filt
            w.blk[2 * (<long long>j * ms + stage) + 1] = filt


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
            if comp.order[stage] == 0:
                _root_pass(run, w, comp, stage, na, ms, mp)
            else:
                _part_pass(run, memo, st, w, comp, stage, n, na, ms, mp)
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
