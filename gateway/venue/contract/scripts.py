"""The venue's Lua scripts, read from the .lua files their packages ship (each file says
what it takes and returns)."""

from __future__ import annotations

from importlib.resources import files
from string import Template


def script(package: str, name: str, **names: str) -> str:
    """The text of `package`'s script `name`, with each $NAME in it (a field name: one
    home, in venue.contract) replaced by `names`' value."""
    text = files(package).joinpath(name).read_text()
    return Template(text).substitute(names) if names else text
