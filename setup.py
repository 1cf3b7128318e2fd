"""Build script: the Cython speedups in litemesh/_speedups, each with a pure-Python twin.

Options for ``build_ext``: ``--cython-always`` (re-cythonize even if the .c exists),
``--cython-annotate`` (HTML annotation), and ``LITEMESH_DEBUG=1`` in the environment compiles
the debug counters in (ext/include/lm_debug.h).
"""
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
#: one small extension per hot structure; each has a twin under litemesh/ (see litemesh/_ext.py)
SPEEDUPS = ["trie", "shm"]


class build_ext(_build_ext):
    user_options = _build_ext.user_options + [
        ("cython-always", None, "run cythonize even if the .c files are present"),
        ("cython-annotate", None, "produce Cython's HTML annotation of each module"),
    ]
    boolean_options = _build_ext.boolean_options + ["cython-always", "cython-annotate"]

    def initialize_options(self):
        super().initialize_options()
        self.cython_always = False
        self.cython_annotate = False

    def finalize_options(self):
        need_cython = self.cython_always or any(
            not os.path.exists(src.replace(".pyx", ".c")) for ext in self.distribution.ext_modules for src in ext.sources
        )
        if need_cython:
            from Cython.Build import cythonize

            debug = os.environ.get("LITEMESH_DEBUG", "0") == "1"
            self.distribution.ext_modules[:] = cythonize(
                self.distribution.ext_modules,
                compiler_directives={"language_level": "3", "boundscheck": debug, "wraparound": False,
                                     "embedsignature": True},
                compile_time_env={"LITEMESH_DEBUG": debug},
                annotate=self.cython_annotate,
                force=self.cython_always,
            )
        super().finalize_options()


def extensions():
    macros = [("LITEMESH_DEBUG", "1")] if os.environ.get("LITEMESH_DEBUG") == "1" else []
    return [
        Extension(
            f"litemesh._speedups.{name}",
            [f"litemesh/_speedups/{name}.pyx"],
            include_dirs=[os.path.join(HERE, "ext", "include")],
            define_macros=macros,
            extra_compile_args=["-O2"],
        )
        for name in SPEEDUPS
    ]


setup(ext_modules=extensions(), cmdclass={"build_ext": build_ext})
