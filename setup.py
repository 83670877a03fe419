"""Build the Cython extensions of dpm.

Every ``*.pyx`` file under ``dpm/`` becomes an extension module named after its
path (``dpm/features/_hog.pyx`` -> ``dpm.features._hog``).  Set
``DPM_BUILD_ONLY=dpm._dt,dpm._learn`` to build a subset while developing.
"""
import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent


def extensions():
    only = {m for m in os.environ.get("DPM_BUILD_ONLY", "").split(",") if m}
    exts = []
    for pyx in sorted((HERE / "dpm").rglob("*.pyx")):
        rel = pyx.relative_to(HERE)
        name = ".".join(rel.with_suffix("").parts)
        if only and name not in only:
            continue
        exts.append(
            Extension(
                name,
                [str(rel)],
                depends=[str(h.relative_to(HERE)) for h in sorted(pyx.parent.glob("*.h"))],
                include_dirs=[numpy.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=["-O3"] if os.name != "nt" else ["/O2"],
            )
        )
    return exts


setup(
    ext_modules=cythonize(
        extensions(),
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
    scripts=[str(p.relative_to(HERE)) for p in sorted((HERE / "bin").glob("dpm-*"))],
)
