"""The compiled parts of the Python package (metadata is in pyproject.toml)."""

from setuptools import Extension, setup

_FLAGS = ["-O2", "-std=c11"]

setup(ext_modules=[
    Extension("venue._orderwire", ["gateway/venue/_orderwire.c"], extra_compile_args=_FLAGS,
              depends=["gateway/venue/engine_wire.h"]),
    Extension("venue._reportwire", ["gateway/venue/_reportwire.c"], extra_compile_args=_FLAGS,
              depends=["gateway/venue/engine_wire.h"]),
])
