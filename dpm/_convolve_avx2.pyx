# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#
# The convolution kernels of _convolve.pyx built for processors with AVX2
# (setup.py compiles this module with -mavx2 -mno-fma where the compiler and
# platform allow it; dpm.convolve uses it instead of _convolve when the
# processor has AVX2).  Same source, same operations in the same order and no
# fused multiply-add, so the fixed-order results are identical; the compiler
# only gets wider registers (_convolve_fixed.h uses 4-double vectors here).
include "_convolve.pyx"
