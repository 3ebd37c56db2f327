"""atheris: venue._orderwire (C) over batch request bodies, the bytes any client sends to
POST /v1/orders/batch. Each input is scanned as the batch route does; a batch the C path
takes must be one the Python rules take order for order, encoded and answered byte for
byte as Python would (tests/unit/test_orderwire.py assert_same_as_python, the one oracle).
The extension is built with clang's coverage for libFuzzer, ASan and UBSan (`make fuzz`,
tests/fuzz/run.py), so a memory error or undefined behaviour in it is a crash too.
"""

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_orderwire import assert_same_as_python  # noqa: E402


def test_one_input(data: bytes) -> None:
    assert_same_as_python(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
