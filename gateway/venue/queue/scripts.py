"""The queue's Lua scripts, read from the package's .lua files (each says what it takes
and returns)."""

from __future__ import annotations

from importlib.resources import files
from string import Template


def script(name: str, **names: str) -> str:
    """The script's text, with each $NAME in it (a field name: one home, in
    venue.contract) replaced by `names`' value."""
    text = files(__package__).joinpath(name).read_text()
    return Template(text).substitute(names) if names else text
