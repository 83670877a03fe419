# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#
# The resize kernels of _resize.pyx built for processors with AVX2 (setup.py
# compiles this module with -mavx2 where the compiler and platform allow it;
# dpm.features.hog imports it instead of _resize when the processor has
# AVX2).  Same source, same operations in the same order and no fused
# multiply-add, so the results are identical; the compiler's vectoriser only
# gets wider registers (the four doubles of one destination pixel's RGB
# channels, see _reduce_row).
include "_resize.pyx"
