# cython: language_level=3
#
# What the processor offers, for choosing between builds of a kernel.
import importlib

cdef extern from "_simd.h":
    int dpm_have_avx2() noexcept nogil


def have_avx2():
    """True if code built for AVX2 can run on this processor and system."""
    return bool(dpm_have_avx2())


def best_build(module):
    """The module ``module`` (a full name) or, where the processor has AVX2
    and it was built, its AVX2 build ``module + "_avx2"`` (same results)."""
    if have_avx2():
        try:
            return importlib.import_module(module + "_avx2")
        except ImportError:
            pass
    return importlib.import_module(module)
