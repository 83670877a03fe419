"""Bounded readers for the container files ``dpm`` reads: ``.npz`` archives and MATLAB ``.mat`` files.

Both check every size a file declares against a documented limit
(:mod:`dpm.limits`) before they decompress or allocate anything, so a small
hostile file cannot take the machine's memory.  One reader serves models,
checkpoints and anything else.
"""
from .mat import matlab_cells, matlab_index, read_mat
from .npz import read_npz, write_npz

__all__ = ["matlab_cells", "matlab_index", "read_npz", "read_mat", "write_npz"]
