"""Schemathesis over the gateway's own OpenAPI document, every route, with a valid key,
against a whole local venue (real gateway, Redis, submitter, engine, writer, Postgres):
no input gets a 5xx, and no answer breaks the schema the document gives it.

Bounded in `make test` (VENUE_FUZZ_EXAMPLES examples per route, default 25); `make fuzz`
runs it long.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from venue.contract.config import Settings, VenueConfig
from venue.local.engine import engine_binary
from venue.local.process import free_port
from venue.local.venue import LocalVenue

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("VENUE_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def fuzzed_venue() -> Iterator[LocalVenue]:
    """One venue for every route's examples, with Redis and Postgres of its own."""
    engine_binary()  # fails, not skips, when the engine is not built
    data_dir = Path(tempfile.mkdtemp(prefix="venue-fuzz-"))
    data_dir.chmod(0o755)  # the private Postgres runs as `postgres` when we are root
    venue = LocalVenue(Settings(redis_url=None, database_url=None), VenueConfig(), data_dir,
                       gateway_port=free_port(), say=lambda _: None)
    try:
        yield venue.start()
    finally:
        venue.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def operations(venue: LocalVenue) -> list:
    schema = schemathesis.openapi.from_url(f"{venue.gateway_url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_gets_a_5xx_or_an_answer_outside_its_schema(fuzzed_venue: LocalVenue,
                                                             mode: GenerationMode):
    # Each route's examples in turn (schemathesis's own pytest plugin does not run under
    # this pytest): inputs the schema allows, then inputs it does not.
    headers = {"Authorization": f"Bearer {fuzzed_venue.keys['alice']}"}
    found = operations(fuzzed_venue)
    assert len(found) >= 10, [o.label for o in found]
    calls = 0
    for operation in found:
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:  # nothing to get wrong: the route takes no input
            continue
        except Exception as error:
            raise AssertionError(f"{operation.label} ({mode.value}): {error}") from error
    print(f"{mode.value}: {calls} calls over {len(found)} routes, no 5xx, none outside its schema")
