"""Builds shenjing's one optional C extension (shenjing/_ckernels.c, the compiled kernels
behind shenjing/compiled.py). Everything else about the package is in pyproject.toml.

The extension is optional: when no C compiler is present, or it fails, pip still installs
shenjing, which then runs its NumPy kernels. It is compiled for the installing machine
(-march=native; shenjing is installed from source, as the README's commands do), and retried
without that flag when the compiler does not know it.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# -O2 with the vectorizer, not -O3: gcc 12's -O3 made the max-pool forward 5x slower here
# (2.2 vs 12.7 ms on a seed-000 CNN pool, measured); -fno-trapping-math lets it vectorize
# the clamped exp.
FLAGS = ["-O2", "-ftree-vectorize", "-fno-math-errno", "-fno-trapping-math"]


class BuildExt(build_ext):
    def build_extension(self, ext):
        ext.extra_compile_args = FLAGS + ["-march=native"]
        try:
            super().build_extension(ext)
        except Exception:  # e.g. a compiler without -march=native: a portable build
            ext.extra_compile_args = FLAGS
            super().build_extension(ext)


setup(ext_modules=[Extension("shenjing._ckernels", ["shenjing/_ckernels.c"], optional=True)],
      cmdclass={"build_ext": BuildExt})
