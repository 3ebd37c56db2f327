"""Under `make sanitize`: the C extensions the wire tests exercise are the ones built with
ASan and UBSan, with ASan's runtime loaded (so a test run there proves something)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SANITIZING = "libasan" in os.environ.get("LD_PRELOAD", "")


@pytest.mark.skipif(not SANITIZING, reason="only under `make sanitize`")
def test_the_extensions_under_test_are_the_sanitized_ones():
    from venue import _orderwire, _reportwire

    for module in (_orderwire, _reportwire):
        assert "sanitize-py" in Path(module.__file__).parts, module.__file__
    maps = Path("/proc/self/maps").read_text()
    assert "libasan" in maps and "libubsan" in maps
