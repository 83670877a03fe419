# cython: language_level=3
#
# What the processor offers, for choosing between builds of a kernel.

cdef extern from "_simd.h":
    int dpm_have_avx2() noexcept nogil


def have_avx2():
    """True if code built for AVX2 can run on this processor and system."""
    return bool(dpm_have_avx2())
