# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#
# The star-cascade kernel of _cascade.pyx built for processors with AVX2
# (setup.py compiles this module with -mavx2 -mno-fma where the compiler and
# platform allow it; dpm.detection.cascade uses it instead of _cascade when the
# processor has AVX2).  Same source, same operations in the same order.
include "_cascade.pyx"
