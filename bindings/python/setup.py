"""Build the tollgate Python package: the native library, then the cffi module.

``pip install ./bindings/python`` (from the repository root) runs CMake on the
repository two levels above this file, builds the ``tollgate`` shared library
in a temporary directory, compiles the cffi extension ``tollgate._native``
(API mode) against ``include/tollgate/tollgate.h`` and that library, and puts
``libtollgate.so.0`` beside the extension, which finds it through an
``$ORIGIN`` run path: no LD_LIBRARY_PATH is needed at import.

Environment knobs (all optional):

* ``TOLLGATE_CMAKE_BUILD_DIR``: build (and keep) the library there instead of
  a temporary directory, so repeated installs reuse the CMake build;
* ``CMAKE_BUILD_PARALLEL_LEVEL``: passed through to ``cmake --build``;
* ``CMAKE``: the cmake executable (default: ``cmake`` on PATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
LIB_SONAME = "libtollgate.so.0"
EXT_NAME = "tollgate._native"

sys.path.insert(0, str(HERE))
from build_ffi import HEADER_RELPATH, make_ffibuilder  # noqa: E402

CMAKE_ARGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DTOLLGATE_BUILD_TESTS=OFF",
    "-DTOLLGATE_BUILD_BENCHMARKS=OFF",
    "-DTOLLGATE_BUILD_EXAMPLES=OFF",
    "-G",
    "Ninja",
]


def _run(cmd: List[str]) -> None:
    print("tollgate setup: " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


class BuildTollgate(build_ext):
    """build_ext that first builds libtollgate with CMake."""

    def run(self) -> None:
        if not (REPO_ROOT / HEADER_RELPATH).is_file() or not (REPO_ROOT / "CMakeLists.txt").is_file():
            raise RuntimeError(
                f"tollgate sources not found at {REPO_ROOT}: the Python package is built from "
                "a checkout of the repository (pip install ./bindings/python)"
            )
        keep = os.environ.get("TOLLGATE_CMAKE_BUILD_DIR")
        build_dir = Path(keep).resolve() if keep else Path(tempfile.mkdtemp(prefix="tollgate-cmake-"))
        try:
            lib_dir = self._build_library(build_dir)
            self._configure_extension(lib_dir)
            super().run()
            self._install_library(lib_dir)
        finally:
            if not keep:
                shutil.rmtree(build_dir, ignore_errors=True)

    def _build_library(self, build_dir: Path) -> Path:
        cmake = os.environ.get("CMAKE") or shutil.which("cmake")
        if not cmake:
            raise RuntimeError("cmake is required to build tollgate (and ninja)")
        _run([cmake, "-S", str(REPO_ROOT), "-B", str(build_dir), *CMAKE_ARGS])
        _run([cmake, "--build", str(build_dir), "--target", "tollgate"])
        lib_dir = build_dir / "lib"
        if not (lib_dir / LIB_SONAME).exists():
            found = sorted(build_dir.rglob(LIB_SONAME))
            if not found:
                raise RuntimeError(f"the CMake build produced no {LIB_SONAME} under {build_dir}")
            lib_dir = found[0].parent
        return lib_dir

    def _configure_extension(self, lib_dir: Path) -> None:
        ffibuilder = make_ffibuilder(REPO_ROOT, lib_dir)
        tmp = Path(self.build_temp) / "cffi"
        tmp.mkdir(parents=True, exist_ok=True)
        generated = ffibuilder.distutils_extension(tmpdir=str(tmp), verbose=False)
        for ext in self.extensions:
            if ext.name != EXT_NAME:
                continue
            for attr in (
                "sources",
                "include_dirs",
                "define_macros",
                "library_dirs",
                "libraries",
                "extra_compile_args",
                "extra_link_args",
                "runtime_library_dirs",
                "py_limited_api",
            ):
                if hasattr(generated, attr):
                    setattr(ext, attr, getattr(generated, attr))

    def _install_library(self, lib_dir: Path) -> None:
        # Next to the extension: in build_lib for a wheel, in the source tree
        # for an in-place build. copy2 follows the SONAME symlink.
        dest = Path(self.get_ext_fullpath(EXT_NAME)).parent / LIB_SONAME
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib_dir / LIB_SONAME, dest)

    def get_outputs(self) -> List[str]:
        outputs = list(super().get_outputs())
        outputs.append(str(Path(self.get_ext_fullpath(EXT_NAME)).parent / LIB_SONAME))
        return outputs


setup(
    ext_modules=[Extension(EXT_NAME, sources=[])],
    cmdclass={"build_ext": BuildTollgate},
)
