"""The rules of path and query parameters, beyond what FastAPI holds them to.

- Query parameters a route does not take are refused, not ignored. Left to itself
  FastAPI drops a query parameter no route parameter names, so a misspelt filter
  (`GET /v1/orders?stauts=open`, `?clientOrderId=...`) answers as if none were given:
  every order, not the few asked for. The routes of the API depend on
  `known_query_parameters`, which answers 422 naming each parameter the route does not
  take and the ones it does. A parameter given more than once (`?status=open&status=all`)
  is refused too, naming it: FastAPI took the last, whichever the client meant. The
  WebSockets (`/v1/ws`, `/v1/market`) take none: their handshakes are answered 422 the
  same way (`refused_query`), rather than opening a socket that ignored them.
- An integer in a path or query is ASCII digits (`Digits`): FastAPI's lax parsing took
  `5.0`, `+5` and ` 5`, so `DELETE /v1/orders/{id}.0` cancelled the order.
- A time is RFC 3339 with its offset (`Rfc3339`): pydantic also reads a number as Unix
  seconds (or milliseconds, as it guesses from the size).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Request, WebSocket
from fastapi.responses import JSONResponse
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError

from starlette.datastructures import QueryParams

from venue.api.order_rules import ECHO_ITEMS, Error, echoed, error
from venue.contract.instruments import ascii_digits


def _digits(value: Any) -> Any:
    if isinstance(value, str) and not ascii_digits(value):
        raise PydanticCustomError("int_parsing", "Input should be an integer: ASCII digits "
                                                 "only")
    return value


# A non-negative integer of a path or query parameter, written in ASCII digits only.
Digits = Annotated[int, BeforeValidator(_digits)]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?",
                      re.ASCII)


def _rfc3339(value: Any) -> Any:
    # No offset at all is left to AwareDatetime, whose error says that is what is missing.
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise PydanticCustomError("datetime_from_date_parsing", "Input should be an RFC 3339 "
                                  "time with its offset, e.g. 2026-12-05T17:00:00Z")
    return value


# A time of a query parameter: RFC 3339, with its UTC offset.
Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]

# Each route's parameter names, by id(route): routes live as long as the app.
_NAMES: dict[int, frozenset[str]] = {}


def _names(dependant: Dependant) -> frozenset[str]:
    found = {field.alias for field in dependant.query_params}
    for inner in dependant.dependencies:
        found |= _names(inner)
    return frozenset(found)


def query_errors(given: QueryParams, taken: frozenset[str]) -> list[Error]:
    """The errors of query parameters a route does not take (the first ECHO_ITEMS, then
    one counting the rest, as a body's unknown fields: an answer of 5,200 errors was 636
    KB, 79 ms in coming), or that are given twice."""
    unknown = [name for name in dict.fromkeys(given) if name not in taken]
    repeated = [name for name in dict.fromkeys(given)
                if name in taken and len(given.getlist(name)) > 1]
    known = ", ".join(sorted(taken)) if taken else "none"
    errors = [error(("query", name), "extra_forbidden",
                    f"unknown query parameter {echoed(name)!r}: this route takes {known}",
                    given[name]) for name in unknown[:ECHO_ITEMS]]
    if len(unknown) > ECHO_ITEMS:
        errors.append(error(("query",), "extra_forbidden",
                            f"and {len(unknown) - ECHO_ITEMS} more query parameters this "
                            "route does not take"))
    return errors + [error(
        ("query", name), "repeated_parameter",
        f"query parameter {name!r} is given {len(given.getlist(name))} times: give it once",
        given.getlist(name)) for name in repeated]


async def known_query_parameters(request: Request) -> None:
    if not request.scope.get("query_string"):
        return
    route = request.scope["route"]
    taken = _NAMES.get(id(route))
    if taken is None:
        taken = _NAMES[id(route)] = _names(route.dependant)
    errors = query_errors(request.query_params, taken)
    if errors:
        raise RequestValidationError(errors)


async def refused_query(websocket: WebSocket) -> bool:
    """The WebSockets' rule (they take no query parameters): a handshake with any is
    answered 422, as an HTTP route answers them (FastAPI leaves a WebSocket route's
    dependencies' errors to close the socket, 1008, saying nothing of which)."""
    if not websocket.scope.get("query_string"):
        return False
    errors = query_errors(websocket.query_params, frozenset())
    if not errors:
        return False
    await websocket.send_denial_response(JSONResponse({"detail": errors}, 422))
    return True


# The routers' `dependencies=` of every HTTP route of the API.
STRICT_QUERY = [Depends(known_query_parameters)]
