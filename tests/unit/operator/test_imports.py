"""The operator takes what it shares with the venue from venue.contract alone: never grpc,
the local runner or a process of the venue."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_operator_imports_no_grpc_no_runner_and_no_venue_process() -> None:
    loaded = json.loads(subprocess.run(
        [sys.executable, "-c", "import json, sys; import venue_operator.handlers; "
                               "print(json.dumps(sorted(sys.modules)))"],
        check=True, capture_output=True, text=True).stdout)
    forbidden = ("grpc", "venue.local", "venue.api", "venue.writer", "venue.submitter",
                 "venue.queue", "venue.bench")
    assert [m for m in loaded if m.startswith(forbidden)] == []
