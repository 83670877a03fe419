"""Filter responses: valid cross-correlation of a feature map with many filters.

This is the computation of voc-release3.1 ``fconv.cc`` (spec §1.7): for a
feature map ``A`` of shape ``(H, W, C)`` and a filter ``B`` of shape
``(h, w, C)``, the response is

    C[y, x] = sum_{dy, dx, c} A[y + dy, x + dx, c] * B[dy, dx, c]

for ``0 <= y <= H - h`` and ``0 <= x <= W - w`` (a *valid* correlation, the
filter is not flipped).  Arrays are indexed ``[y, x, channel]`` and positions
are 0-based; the response at ``[y, x]`` is the score of the filter placed with
its top-left cell on feature cell ``(x, y)``, i.e. MATLAB's ``C(y+1, x+1)``.

A detector correlates the same filters with every pyramid level, so the filters
are packed once into a :class:`FilterBank`.  The kernel computes all cell
responses of a band of rows with one BLAS GEMM and shift-adds them into the
outputs (see ``dpm/_convolve.pyx``).

Fixed summation order
---------------------
A GEMM's summation order depends on the BLAS library, the kernel it picks for
the processor and its build, so its last bits differ between machines.  With
``exact_order=True`` (float64 banks only) :meth:`FilterBank.convolve` computes
the cell products with the project's own kernel instead, in one documented
order (the header of ``dpm/_convolve.pyx``): the same bits on every machine,
with any BLAS, in the portable and the AVX2 build.  Training uses it (latent
search and hard-negative mining decide what the learner sees); detection
keeps the faster BLAS path.  The zero padding a detector puts around
every pyramid level is not formed: ``pad=`` gives the responses of the padded
map from the unpadded one.  Feature positions that are entirely zero are also
skipped where cheap; this changes nothing but the sign of zero results.

BLAS threads
------------
The GEMM runs in the OpenBLAS bundled with SciPy, whose thread pool is global
to the process (``OPENBLAS_NUM_THREADS``, read when SciPy's BLAS is loaded,
sets its size; it defaults to the number of cores).  Detection is meant to be
parallelised over images with processes, so by default
:meth:`FilterBank.convolve` limits SciPy's OpenBLAS to one thread for the
duration of the call (``blas_threads=1``) and restores the previous setting
afterwards.  :func:`limit_blas_threads` is the same control as a context
manager (both live in :mod:`dpm.blas` and are re-exported here).
When SciPy is linked to another BLAS (MKL, Accelerate, a system-wide OpenBLAS,
as in some distribution or conda builds) the count is not changed from here: set
``OPENBLAS_NUM_THREADS=1`` / ``MKL_NUM_THREADS=1`` / ``VECLIB_MAXIMUM_THREADS=1``
in the environment of the worker processes instead.
"""
from __future__ import annotations

import logging

import numpy as np

from . import _cpu
from .blas import cython_blas, get_blas_threads, limit_blas_threads

_convolve = _cpu.best_build(__package__ + "._convolve")
_convolve._set_blas(cython_blas().__pyx_capi__)

__all__ = ["BandResponses", "FilterBank", "convolve", "limit_blas_threads", "get_blas_threads"]

logger = logging.getLogger(__name__)

# Target size of the per-band buffer of cell responses.  It is written by the
# GEMM and read back by the shift-and-add, so it should stay in the L2 cache;
# see benchmarks/bench_kernels.py for the measurements behind the value.
BAND_BYTES = 256 * 1024

_SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INT_MAX = 2**31 - 1  # BLAS (LP64) dimensions are C ints


# ---------------------------------------------------------------------------
# Filter bank


class FilterBank:
    """A set of filters packed for fast correlation with many feature maps.

    Parameters
    ----------
    filters : sequence of (h, w, C) array_like
        The filters, indexed ``[y, x, channel]``; all must have the same ``C``
        and ``h, w >= 1``.  Sizes may differ.
    dtype : {np.float64, np.float32}, optional
        Precision of the computation and of the outputs (default float64,
        the original's ``double``).  float32 is about twice as fast.

    Attributes
    ----------
    sizes : list of (int, int)
        ``(h, w)`` of each filter.
    num_channels : int
        ``C``.
    dtype : numpy.dtype

    Examples
    --------
    >>> import numpy as np
    >>> bank = FilterBank([np.ones((2, 2, 3)), np.ones((1, 3, 3))])
    >>> [r.shape for r in bank.convolve(np.ones((4, 5, 3)))]
    [(3, 4), (4, 3)]
    >>> float(bank.convolve(np.ones((4, 5, 3)))[0][0, 0])
    12.0
    """

    def __init__(self, filters, *, dtype=np.float64):
        dtype = np.dtype(dtype)
        if dtype not in _SUPPORTED_DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        filters = [np.asarray(f) for f in filters]
        if not filters:
            raise ValueError("a FilterBank needs at least one filter")
        nchan = None
        for i, f in enumerate(filters):
            if f.ndim != 3 or f.shape[0] < 1 or f.shape[1] < 1 or f.shape[2] < 1:
                raise ValueError(
                    f"filter {i} must be a non-empty (h, w, C) array, got shape {f.shape}"
                )
            if nchan is None:
                nchan = f.shape[2]
            elif f.shape[2] != nchan:
                raise ValueError(
                    f"filter {i} has {f.shape[2]} channels, filter 0 has {nchan}; all must match"
                )
        self.dtype = dtype
        self.num_channels = int(nchan)
        self.sizes = [(int(f.shape[0]), int(f.shape[1])) for f in filters]
        cells = [h * w for h, w in self.sizes]
        self._k0 = np.concatenate([[0], np.cumsum(cells)[:-1]]).astype(np.intp)
        self._bank = np.ascontiguousarray(
            np.concatenate([f.reshape(-1, nchan) for f in filters]), dtype=dtype
        )
        if self._bank.shape[0] > _INT_MAX:
            raise ValueError("the filters have too many cells in total for BLAS")
        self._layouts = {}

    def __len__(self):
        return len(self.sizes)

    def __repr__(self):
        return f"FilterBank({len(self)} filters, C={self.num_channels}, dtype={self.dtype.name})"

    def convolve(self, features, *, pad=(0, 0), allow_empty=False, blas_threads=1,
                 exact_order=False):
        """Correlate a feature map with every filter of the bank.

        Parameters
        ----------
        features : (H, W, C) array_like
            Indexed ``[y, x, channel]``.  Made C-contiguous and cast to the
            bank's dtype if needed (no copy when it already is).
        pad : (int, int), optional
            ``(pady, padx)``: correlate the map surrounded by ``pady`` rows
            and ``padx`` columns of zeros on each side, as a detector pads
            every pyramid level, without forming the padded map (the zeros
            are skipped).  Default: no padding.
        allow_empty : bool, optional
            If False (default), a filter larger than the map raises
            ``ValueError`` as the original ``fconv`` does.  If True its
            response is an empty array of shape
            ``(max(H - h + 1, 0), max(W - w + 1, 0))``.
        blas_threads : int or None, optional
            OpenBLAS threads used during the call (default 1: no thread pool,
            for callers parallelised with processes).  None keeps the current
            process-wide setting.  See the module docstring.
        exact_order : bool, optional
            If True, compute without BLAS in the fixed summation order of
            ``dpm/_convolve.pyx`` (bit-identical on every machine; float64
            banks only).  Default False: BLAS, faster.

        Returns
        -------
        list of ndarray
            One ``(H + 2*pady - h + 1, W + 2*padx - w + 1)`` array of the
            bank's dtype per filter, in the bank's order.  Entry ``[y, x]``
            is the filter's score with its top-left cell on cell ``(x, y)``
            of the padded map (0-based).

        Raises
        ------
        ValueError
            If ``features`` is not 3-D, its channel count differs from the
            filters', (unless ``allow_empty``) a filter is larger than it, or
            ``exact_order`` is asked of a float32 bank.
        """
        if exact_order and self.dtype != np.float64:
            raise ValueError(f"exact_order=True needs a float64 FilterBank, this one is {self.dtype.name} "
                             "(build it with dtype=np.float64)")
        feats = np.asarray(features)
        if feats.ndim != 3:
            raise ValueError(f"features must be an (H, W, C) array, got shape {feats.shape}")
        height, width, nchan = feats.shape
        if nchan != self.num_channels:
            raise ValueError(
                f"features have {nchan} channels but the filters have {self.num_channels}"
            )
        if height * width > _INT_MAX:
            raise ValueError(f"feature map {height}x{width} is too large for BLAS (32-bit sizes)")
        pady, padx = (int(v) for v in pad)
        if pady < 0 or padx < 0:
            raise ValueError(f"pad must be two non-negative integers, got {pad!r}")
        feats = np.ascontiguousarray(feats, dtype=self.dtype)
        height, width = height + 2 * pady, width + 2 * padx

        layout, shapes, total = self._layout(height, width)
        if not allow_empty:
            for i, (h, w) in enumerate(self.sizes):
                if h > height or w > width:
                    raise ValueError(
                        f"filter {i} of size {h}x{w} is larger than the {height}x{width} "
                        "feature map (pass allow_empty=True to get an empty response)"
                    )

        out = np.zeros(total, dtype=self.dtype)
        if total and exact_order:
            _convolve.convolve_bank_fixed(feats, self._bank, layout, out, BAND_BYTES, pady, padx)
        elif total:
            with limit_blas_threads(blas_threads):
                _convolve.convolve_bank(feats, self._bank, layout, out, BAND_BYTES, pady, padx)
        return self._views(out, shapes)

    def _views(self, out, shapes):
        results = []
        for (hout, wout), off in shapes:
            if off >= 0:
                results.append(out[off:off + hout * wout].reshape(hout, wout))
            else:
                results.append(np.zeros((hout, wout), dtype=self.dtype))
        return results

    def band_responses(self, height: int, width: int, *, pad=(0, 0), exact_order: bool = False):
        """:class:`BandResponses`: the responses of an ``height x width`` map fed in bands of rows."""
        if exact_order and self.dtype != np.float64:
            raise ValueError(f"exact_order=True needs a float64 FilterBank, this one is {self.dtype.name}")
        return BandResponses(self, int(height), int(width), pad, exact_order)


    def _layout(self, height, width):
        """Kernel layout, per-filter ``((h, w), offset)`` and total output size.

        ``offset`` is -1 for an empty response.  Cached per map size.
        """
        key = (height, width)
        cached = self._layouts.get(key)
        if cached is not None:
            return cached
        layout = np.zeros((len(self.sizes), 5), dtype=np.intp)
        shapes = []
        offset = 0
        for i, (h, w) in enumerate(self.sizes):
            hout, wout = height - h + 1, width - w + 1
            if hout <= 0 or wout <= 0:
                shapes.append(((max(hout, 0), max(wout, 0)), -1))
                layout[i] = (h, w, self._k0[i], 0, 0)
            else:
                shapes.append(((hout, wout), offset))
                layout[i] = (h, w, self._k0[i], offset, 1)
                offset += hout * wout
        if len(self._layouts) >= 256:  # a pyramid has a few dozen sizes; stay bounded
            self._layouts.clear()
        self._layouts[key] = (layout, shapes, offset)
        return layout, shapes, offset


class BandResponses:
    """Responses of one feature map to a :class:`FilterBank`, its rows fed band by band.

    For maps too large to hold (a bounded-memory detector computes a pyramid
    level's features a band of rows at a time): :meth:`feed` takes rows
    ``start, ...`` of the map and returns the row the next call must start at
    (the kernel leaves a band of its own that the given rows end inside of for
    the next call), so that every GEMM and every addition is the one
    :meth:`FilterBank.convolve` makes for the whole map, in the same order:
    :attr:`responses` are then bit-identical to ``convolve(map, pad=pad)``.
    """

    def __init__(self, bank: FilterBank, height: int, width: int, pad, exact_order: bool):
        pady, padx = (int(v) for v in pad)
        if pady < 0 or padx < 0:
            raise ValueError(f"pad must be two non-negative integers, got {pad!r}")
        if height * width > _INT_MAX:
            raise ValueError(f"feature map {height}x{width} is too large for BLAS (32-bit sizes)")
        self.bank, self.height, self.width, self.pad = bank, height, width, (pady, padx)
        self.exact_order = exact_order
        self._layout, shapes, total = bank._layout(height + 2 * pady, width + 2 * padx)
        self._out = np.zeros(total, dtype=bank.dtype)
        #: The responses (complete once every row was fed), as :meth:`FilterBank.convolve` returns them.
        self.responses = bank._views(self._out, shapes)
        #: The next row to feed.
        self.next_row = 0

    @property
    def nbytes(self) -> int:
        return self._out.nbytes

    def feed(self, features, start: int, blas_threads=1) -> int:
        """Feed rows ``start .. start + len(features) - 1`` of the map; ``start`` must be
        :attr:`next_row`.  Returns (and stores) the new :attr:`next_row`."""
        if start != self.next_row:
            raise ValueError(f"rows must be fed from row {self.next_row}, got {start}")
        feats = np.ascontiguousarray(features, dtype=self.bank.dtype)
        if feats.ndim != 3 or feats.shape[1:] != (self.width, self.bank.num_channels):
            raise ValueError(f"features must be (rows, {self.width}, {self.bank.num_channels}), got {feats.shape}")
        if start + feats.shape[0] > self.height:
            raise ValueError(f"rows {start}..{start + feats.shape[0] - 1} run past the map's {self.height} rows")
        last = start + feats.shape[0] == self.height
        if self._out.size == 0 or feats.shape[0] == 0:
            self.next_row = start + feats.shape[0]
            return self.next_row
        pady, padx = self.pad
        with limit_blas_threads(None if self.exact_order else blas_threads):
            self.next_row = _convolve.convolve_bank_rows(feats, self.bank._bank, self._layout, self._out, BAND_BYTES,
                                                         pady, padx, start, self.height, last, self.exact_order)
        return self.next_row


def convolve(features, filters, dtype=np.float64, *, allow_empty=False, blas_threads=1,
             exact_order=False):
    """Correlate a feature map with a list of filters (one-off :class:`FilterBank`).

    Parameters
    ----------
    features : (H, W, C) array_like
    filters : sequence of (h, w, C) array_like
    dtype : {np.float64, np.float32}, optional
    allow_empty, blas_threads, exact_order
        As in :meth:`FilterBank.convolve`.

    Returns
    -------
    list of (H - h + 1, W - w + 1) ndarray
        One response per filter, of the requested dtype.

    See Also
    --------
    FilterBank : build once and reuse across pyramid levels.
    """
    bank = FilterBank(filters, dtype=dtype)
    return bank.convolve(features, allow_empty=allow_empty, blas_threads=blas_threads,
                         exact_order=exact_order)
