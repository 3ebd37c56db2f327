"""The one compiled part of the Python package (metadata is in pyproject.toml)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("venue._orderwire", ["gateway/venue/_orderwire.c"],
                             extra_compile_args=["-O2", "-std=c11"])])
