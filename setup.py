"""Build script: the compiled parts of LiteMesh (see litemesh/_ext.py).

* litemesh/_speedups/<name>.pyx: Cython modules, each with a pure-Python twin elsewhere;
* every litemesh module ``x.py`` with an ``x.pxd`` beside it: compiled from that same source in
  Cython's pure-Python mode (the .pxd types its classes, fields and locals) into ``x``'s extension.

Options for ``build_ext``: ``--cython-always`` (re-cythonize even if the .c exists),
``--cython-annotate`` (HTML annotation), and ``LITEMESH_DEBUG=1`` in the environment compiles
the debug counters in (ext/include/lm_debug.h).
"""
import importlib.util
import os
import pathlib

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
        # cythonize is incremental (a .c is regenerated only when its .pyx/.py/.pxd changed), so it
        # always runs when Cython is there; without Cython the shipped .c files are compiled
        if importlib.util.find_spec("Cython") is not None:
            from Cython.Build import cythonize

            debug = os.environ.get("LITEMESH_DEBUG", "0") == "1"
            modules = self.distribution.ext_modules
            speedups = [ext for ext in modules if ext.sources[0].endswith(".pyx")]
            pure_mode = [ext for ext in modules if ext.sources[0].endswith(".py")]
            common = {"compile_time_env": {"LITEMESH_DEBUG": debug}, "annotate": self.cython_annotate,
                      "force": self.cython_always}
            modules[:] = cythonize(
                speedups,
                compiler_directives={"language_level": "3", "boundscheck": debug, "wraparound": False,
                                     "embedsignature": True},
                **common,
            ) + cythonize(
                pure_mode,
                # Python semantics kept (negative indices, checked bounds): the same source runs as
                # plain Python in the pure build.  Types come from the .pxd only, never from the
                # annotations, which describe the Python API.
                compiler_directives={"language_level": "3", "annotation_typing": False, "embedsignature": True,
                                     "nonecheck": True},  # None where an object is expected: an AttributeError, as in Python
                **common,
            )
        super().finalize_options()


def pure_mode_sources():
    """Every ``litemesh/**/x.py`` with an ``x.pxd`` beside it (relative paths, sorted)."""
    root = pathlib.Path(HERE)
    return sorted(
        str(pxd.with_suffix(".py").relative_to(root))
        for pxd in (root / "litemesh").rglob("*.pxd")
        if "_speedups" not in pxd.parts and pxd.with_suffix(".py").exists()
    )


def extensions():
    macros = [("LITEMESH_DEBUG", "1")] if os.environ.get("LITEMESH_DEBUG") == "1" else []
    options = {"include_dirs": [os.path.join(HERE, "ext", "include")], "define_macros": macros,
               "extra_compile_args": ["-O2"]}
    return [
        Extension(f"litemesh._speedups.{name}", [f"litemesh/_speedups/{name}.pyx"], **options)
        for name in SPEEDUPS
    ] + [
        Extension(source[:-3].replace(os.sep, "."), [source], **options)
        for source in pure_mode_sources()
    ]


setup(ext_modules=extensions(), cmdclass={"build_ext": build_ext})
