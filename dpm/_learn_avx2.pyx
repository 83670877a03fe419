# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#
# The learner of _learn.pyx built for processors with AVX2 (setup.py compiles
# this module with -mavx2 where the compiler and platform allow it; dpm.learn
# uses it instead of _learn when the processor has AVX2).  Same source, same
# operations in the same order and no fused multiply-add, so the results are
# identical; the compiler's vectoriser only gets wider registers.
include "_learn.pyx"
