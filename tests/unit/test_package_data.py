"""An installed (non-editable) venue package, as the image holds, carries every file the
code loads besides its modules: each such file matches a package-data pattern."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "gateway" / "venue"
LOADED_SUFFIXES = {".lua", ".sql"}


def test_every_loaded_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["venue"]
    files = [p.relative_to(PACKAGE) for p in PACKAGE.rglob("*") if p.suffix in LOADED_SUFFIXES]
    assert files
    missing = [str(f) for f in files if not any(f.match(pattern) for pattern in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data] venue: {missing}"
