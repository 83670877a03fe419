"""Time the convolution and distance-transform kernels on a detector-sized workload.

The workload is what detecting one 480x640 image with the VOC2007 person model
(2 components, 12 part filters, 2 root filters) asks of the kernels, on random
feature maps of the right sizes:

* parts: the 36 part levels (sbin 4), of 118x158 cells at scale 1 and
  ``round(120 * 2**(-l/10)) - 2`` x ``round(160 * 2**(-l/10)) - 2`` cells at
  level l, each zero-padded by 2*pady = 14 rows and 2*padx = 10 columns per side;
* roots: the 36 root levels (sbin 8, levels l = 10..45), padded by 7 rows and
  5 columns per side;
* dt: the distance transform of every (negated) part response, 12 per part
  level, with the model's deformation coefficients; whole, every other row,
  and every other row and column (what detection computes) with each
  transform kernel (line by line, eight lines at a time: scalar, portable
  vector, AVX2).

Feature values are standard normal inside each level and zero in the padding,
as ``detect.m`` pads them; the convolution is also timed with random values in
the padding (the kernel skips zero positions, so that is its slow case).

Everything runs single-threaded (BLAS limited to one thread).  Our kernels are
timed as the best of several repeats; the references (``scipy.signal.correlate``,
which picks direct or FFT correlation itself, and a brute-force NumPy distance
transform) run once, on the same inputs, in the same process.

Usage::

    python benchmarks/bench_kernels.py [--repeats 5] [--dt-reference-levels 6]
"""
import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from scipy import signal  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dpm.convolve import FilterBank, get_blas_threads  # noqa: E402
from dpm import _dt  # noqa: E402
from dpm.dt import distance_transform  # noqa: E402
from dpm.model import load_model  # noqa: E402

SHARED = Path(os.environ.get("DPM_SHARED", REPO.parent / "shared"))
MODEL = SHARED / "models" / "voc-release3.1" / "VOC2007" / "person_final.mat"


def level_size(level, height=480, width=640):
    """Unpadded feature size of part level ``level`` (sbin 4) of an image."""
    scale = 2.0 ** (-level / 10)
    return (int(np.floor(height / 4 * scale + 0.5)) - 2, int(np.floor(width / 4 * scale + 0.5)) - 2)


def padded_map(rng, h, w, pady, padx, dtype, zero_padding):
    """Random (h, w, 31) features with pady rows / padx columns of padding per side."""
    if not zero_padding:
        return rng.standard_normal((h + 2 * pady, w + 2 * padx, 31)).astype(dtype)
    out = np.zeros((h + 2 * pady, w + 2 * padx, 31), dtype=dtype)
    out[pady:pady + h, padx:padx + w] = rng.standard_normal((h, w, 31))
    return out


def workload(model, rng, dtype, zero_padding=True):
    pady, padx = model.padding
    part_maps = [padded_map(rng, *level_size(level), 2 * pady, 2 * padx, dtype, zero_padding)
                 for level in range(36)]
    root_maps = [padded_map(rng, *level_size(level), pady, padx, dtype, zero_padding)
                 for level in range(10, 46)]
    return part_maps, root_maps


def multiply_adds(maps, bank):
    """(useful, computed) multiply-adds: valid outputs x filter size, and GEMM work."""
    useful = computed = 0
    cells = sum(h * w for h, w in bank.sizes)
    for m in maps:
        height, width, c = m.shape
        for h, w in bank.sizes:
            useful += max(height - h + 1, 0) * max(width - w + 1, 0) * h * w * c
        computed += height * width * cells * c
    return useful, computed


def best_time(fn, repeats):
    """Best wall time of ``repeats`` runs (the machine may be shared: take the minimum)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def reference_correlate(features, filt):
    return signal.correlate(features, filt, mode="valid")[:, :, 0]


def brute_force_1d(f, a, b):
    n = f.size
    d = np.arange(n)[:, None]
    s = np.arange(n)[None, :]
    cost = (f[None, :] + a * (d - s) ** 2) + b * (d - s)
    arg = np.argmin(cost, axis=1)
    return cost[np.arange(n), arg], arg


def brute_force_dt(vals, ax, bx, ay, by):
    tmp = np.empty_like(vals)
    tmp_iy = np.empty(vals.shape, dtype=np.intp)
    for x in range(vals.shape[1]):
        tmp[:, x], tmp_iy[:, x] = brute_force_1d(vals[:, x], ay, by)
    out = np.empty_like(vals)
    ix = np.empty(vals.shape, dtype=np.intp)
    for y in range(vals.shape[0]):
        out[y], ix[y] = brute_force_1d(tmp[y], ax, bx)
    return out, ix, tmp_iy[np.arange(vals.shape[0])[:, None], ix]


def bench_convolution(model, parts, roots, repeats):
    rng = np.random.default_rng(0)
    results = {}
    cases = [(np.float32, True), (np.float64, True), (np.float32, False), (np.float64, False)]
    for dtype, zero_padding in cases:
        part_maps, root_maps = workload(model, rng, dtype, zero_padding)
        part_bank = FilterBank(parts, dtype=dtype)
        root_bank = FilterBank(roots, dtype=dtype)
        useful_p, computed_p = multiply_adds(part_maps, part_bank)
        useful_r, computed_r = multiply_adds(root_maps, root_bank)

        def run():
            for m in part_maps:
                part_bank.convolve(m)
            for m in root_maps:
                root_bank.convolve(m)

        t_ours = best_time(run, repeats)
        t_parts = best_time(lambda: [part_bank.convolve(m) for m in part_maps], repeats)
        useful = useful_p + useful_r
        computed = computed_p + computed_r
        name = np.dtype(dtype).name
        label = f"{name}, {'zero' if zero_padding else 'random'} padding"
        # With zero padding the kernel skips zero positions: the rates are then
        # effective rates, counting the multiply-adds a plain correlation does.
        print(f"convolution {label:24s}: parts+roots {t_ours * 1e3:6.1f} ms "
              f"(parts alone {t_parts * 1e3:5.1f} ms); {useful / 1e9:.2f} G multiply-adds "
              f"-> {useful / t_ours / 1e9:4.1f} G/s; GEMM over whole maps {computed / 1e9:.2f} G "
              f"-> {computed / t_ours / 1e9:4.1f} G/s")
        results[(name, zero_padding)] = (t_ours, part_maps, root_maps, part_bank, root_bank)

    # Reference on the float64 inputs, once (only its own calls are timed);
    # also checks our answers against it.
    t_ours, part_maps, root_maps, part_bank, root_bank = results[("float64", True)]
    t_ref = 0.0
    worst = 0.0
    for maps, bank, filters in ((part_maps, part_bank, parts), (root_maps, root_bank, roots)):
        for m in maps:
            ours = bank.convolve(m)
            for got, filt in zip(ours, filters):
                start = time.perf_counter()
                ref = reference_correlate(m, filt)
                t_ref += time.perf_counter() - start
                worst = max(worst, float(np.abs(got - ref).max() / np.abs(ref).max()))
    t_f32 = results[("float32", True)][0]
    print(f"reference scipy.signal.correlate, float64, zero padding: {t_ref * 1e3:7.1f} ms; "
          f"speed-up float64 {t_ref / t_ours:.1f}x, float32 {t_ref / t_f32:.1f}x; "
          f"max |difference| / max |response| = {worst:.1e}")
    return results


def bench_dt(model, part_maps, part_bank, repeats, reference_levels):
    deformations = [p.deformation for c in model.components for p in c.parts]
    # Negated part responses, as detect.m transforms them.
    maps = [[-r.astype(np.float64) for r in part_bank.convolve(m)] for m in part_maps]
    n_values = sum(r.size for level in maps for r in level)

    def run(rows=None):
        for level in maps:
            for r, d in zip(level, deformations):
                distance_transform(r, *d, rows=rows)

    t_full = best_time(run, repeats)
    t_half = best_time(lambda: run(slice(0, None, 2)), repeats)
    print(f"dt: {len(maps) * len(deformations)} maps from {maps[0][0].shape} down to "
          f"{maps[-1][0].shape}, {n_values / 1e6:.2f} M values: {t_full * 1e3:.1f} ms "
          f"({t_full / n_values * 1e9:.1f} ns/value); every other row only: {t_half * 1e3:.1f} ms")

    # What the detector computes (every other row and column), with each
    # transform kernel; all must give identical outputs.
    probed = dict(rows=slice(0, None, 2), cols=slice(0, None, 2))
    outputs = {}
    times = {}
    for name in ("lines", "scalar", "vector", "best"):
        actual = _dt._kernel(name)
        if actual in times:
            continue
        times[actual] = best_time(
            lambda: [distance_transform(r, *d, **probed) for lv in maps
                     for r, d in zip(lv, deformations)], repeats)
        outputs[actual] = [distance_transform(r, *d, **probed) for lv in maps
                           for r, d in zip(lv, deformations)]
    _dt._kernel("best")
    ref = outputs["lines"]
    same = all(all(np.array_equal(a, b) for a, b in zip(x, y))
               for out in outputs.values() for x, y in zip(out, ref))
    print("dt, every other row and column (what detection computes), per kernel: "
          + ", ".join(f"{k} {t * 1e3:.1f} ms" for k, t in times.items())
          + f"; default: {_dt._kernel()}; identical outputs: {'yes' if same else 'NO'}")

    subset = maps[-reference_levels:] if reference_levels else []
    if subset:
        t_sub = best_time(lambda: [distance_transform(r, *d) for lv in subset
                                   for r, d in zip(lv, deformations)], repeats)
        t_ref = 0.0
        mismatches = 0
        for lv in subset:
            for r, d in zip(lv, deformations):
                start = time.perf_counter()
                ref = brute_force_dt(r, *d)
                t_ref += time.perf_counter() - start
                got = distance_transform(r, *d)
                same = np.array_equal(got[1], ref[1]) and np.array_equal(got[2], ref[2])
                mismatches += int(not same)
        print(f"dt reference (brute-force NumPy, {len(subset)} smallest levels): "
              f"{t_ref * 1e3:.1f} ms vs {t_sub * 1e3:.2f} ms ours, speed-up {t_ref / t_sub:.0f}x; "
              f"maps whose argmins differ: {mismatches}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dt-reference-levels", type=int, default=12,
                        help="smallest part levels on which to also run the brute-force dt")
    args = parser.parse_args(argv)
    if not MODEL.exists():
        print(f"{MODEL} is absent; the benchmark needs the original person model")
        return 1
    model = load_model(MODEL)
    parts = [p.filter for c in model.components for p in c.parts]
    roots = [c.root for c in model.components]
    print(f"person model: {len(parts)} part filters {sorted({p.shape[:2] for p in parts})}, "
          f"root filters {[r.shape[:2] for r in roots]}, padding {model.padding}; "
          f"OpenBLAS threads during the calls: 1 (process default {get_blas_threads()})")
    results = bench_convolution(model, parts, roots, args.repeats)
    _, part_maps, _, part_bank, _ = results[("float64", True)]
    bench_dt(model, part_maps, part_bank, args.repeats, args.dt_reference_levels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
