"""Build the Cython extensions of dpm.

Every ``*.pyx`` file under ``dpm/`` becomes an extension module named after its
path (``dpm/features/_hog.pyx`` -> ``dpm.features._hog``).  Set
``DPM_BUILD_ONLY=dpm._dt,dpm._learn`` to build a subset while developing.

A module whose name ends in ``_avx2`` is an AVX2 build of another one
(compiled with ``-mavx2``, chosen at run time when the processor has AVX2);
it is built only with GCC or Clang on x86, where that flag exists.
"""
import os
import platform
import sysconfig
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent


def can_build_avx2():
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
    compiler = (sysconfig.get_config_var("CC") or "").split()[:1]
    return x86 and os.name != "nt" and bool(compiler)


def extensions():
    only = {m for m in os.environ.get("DPM_BUILD_ONLY", "").split(",") if m}
    avx2 = can_build_avx2()
    exts = []
    for pyx in sorted((HERE / "dpm").rglob("*.pyx")):
        rel = pyx.relative_to(HERE)
        name = ".".join(rel.with_suffix("").parts)
        if only and name not in only:
            continue
        # No contraction of a * b + c into a fused multiply-add, in any
        # build: training's kernels must give the same bits on processors
        # with and without FMA (GCC contracts by default where the target
        # has it, e.g. on ARM64).
        # No errno from sqrt either (-fno-math-errno): results are the same,
        # and the compiler can then vectorise loops that take square roots.
        args = (["-O3", "-ffp-contract=off", "-fno-math-errno"] if os.name != "nt"
                else ["/O2", "/fp:precise"])
        if name.endswith("_avx2"):
            if not avx2:
                continue
            # No fused multiply-add (-mavx2 does not enable it; say so): the
            # results must equal the portable build's.
            args += ["-mavx2", "-mno-fma"]
        exts.append(
            Extension(
                name,
                [str(rel)],
                depends=[str(h.relative_to(HERE)) for h in sorted([*pyx.parent.glob("*.h"), *pyx.parent.glob("*.pxi")])],
                include_dirs=[numpy.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=args,
                # An AVX2 build that fails to compile (e.g. a multi-architecture
                # build) is left out; the portable module is used instead.
                optional=name.endswith("_avx2"),
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
