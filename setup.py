"""Declares the compiled core only; metadata lives in pyproject.toml.

PYNET_DEBUG=1 builds it with -O0 -g, AddressSanitizer and UBSan (run the tests
with LD_PRELOAD of the compiler's libasan, see .ci/run).
"""
import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("PYNET_DEBUG") == "1"
if debug:
    cflags = ["-O0", "-g3", "-fno-omit-frame-pointer",
              "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    ldflags = ["-fsanitize=address,undefined"]
else:
    cflags = ["-O3", "-g0"]
    ldflags = []

core = Extension(
    "pynet._core",
    sources=["pynet/_core.pyx"] + sorted(glob.glob("csrc/*.c")),
    include_dirs=["csrc"],
    depends=glob.glob("csrc/*.h") + glob.glob("pynet/*.pxi") + glob.glob("pynet/_cdefs/*.pxd"),
    extra_compile_args=["-std=gnu11", "-Wall", "-Wno-unused-function"] + cflags,
    extra_link_args=ldflags,
    define_macros=[("PYNET_DEBUG", "1")] if debug else [],
)

setup(ext_modules=cythonize(
    [core],
    language_level=3,
    compiler_directives={"boundscheck": debug, "wraparound": False,
                         "embedsignature": True},
    force=debug,
))
