"""engine/proto/engine.proto is the one source of the engine's wire: the C extensions'
field numbers (gateway/venue/engine_wire.h) are held to the generated descriptor, the C
sources write no field number out, and Python takes its keys and method paths from the
descriptor. A field renumbered in the .proto fails here or follows by itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from venue.contract.wire import field_number, key, method_path
from venue.enginepb import engine_pb2 as pb

VENUE = Path(__file__).resolve().parents[2] / "gateway" / "venue"
HEADER = VENUE / "engine_wire.h"
C_SOURCES = [VENUE / "_orderwire.c", VENUE / "_reportwire.c"]
DEFINE = re.compile(r"^#define PB_([A-Za-z]+)_([a-z_]+) (\d+)$", re.M)


def header_fields() -> list[tuple[str, str, int]]:
    return [(m, f, int(n)) for m, f, n in DEFINE.findall(HEADER.read_text())]


def test_the_header_names_fields_of_both_directions() -> None:
    messages = {message for message, _, _ in header_fields()}
    assert {"Command", "NewOrder", "ReportBatch", "Event", "ExecutionReport",
            "Trade"} <= messages
    assert len(header_fields()) >= 40


@pytest.mark.parametrize(("message", "field", "number"), header_fields(),
                         ids=[f"{m}.{f}" for m, f, _ in header_fields()])
def test_every_field_number_in_the_c_is_the_descriptors(message: str, field: str,
                                                         number: int) -> None:
    assert field_number(message, field) == number


@pytest.mark.parametrize("source", C_SOURCES, ids=lambda p: p.name)
def test_the_c_writes_no_field_number_out(source: Path) -> None:
    text = re.sub(r"/\*.*?\*/", "", source.read_text(), flags=re.S)  # comments say what they like
    assert '#include "engine_wire.h"' in text
    assert re.findall(r"case [0-9]+:", text) == []
    assert re.findall(r"field\s*(?:==|!=|<=|>=|<|>)\s*[0-9]", text) == []
    assert re.findall(r"wire\s*(?:==|!=)\s*[0-9]", text) == []
    assert re.findall(r"frames->data\[frames->len\+\+\] = 0x", text) == []


def test_python_keys_and_paths_come_from_the_descriptor() -> None:
    assert key("Command", "new_order") == bytes([pb.Command.DESCRIPTOR.fields_by_name[
        "new_order"].number << 3 | 2])
    assert key("NewOrder", "price") == bytes([pb.NewOrder.DESCRIPTOR.fields_by_name[
        "price"].number << 3])
    assert method_path("Submit") == "/tradingvenue.engine.v1.MatchingEngine/Submit"
    sources = [VENUE / "contract" / "wire.py", VENUE / "api" / "commands.py",
               VENUE / "submitter" / "process.py", VENUE / "writer" / "process.py"]
    for source in sources:
        text = source.read_text()
        assert re.findall(r'b"\\x[0-9a-f]{2}', text) == [], source
        assert "MatchingEngine/" not in text, source
