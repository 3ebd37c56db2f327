"""The rules of an order request, each written once, for every channel.

POST /v1/orders (its route and the fast lane), POST /v1/orders/batch (its common case
in C, which tests/unit/test_orderwire.py holds to these rules), PATCH /v1/orders and the
WebSocket's new, cancel and replace all decode and check what they get here, and every
one of them words what is wrong the same way, as FastAPI's 422 does: a list of errors
{"loc", "msg", "type", "input"}, loc relative to what the channel reads (a body, a batch
item, a message) until the channel puts its own prefix before it.

The fields of a new order and of a replace are declared once (NEW_ORDER, REPLACE).
From the declarations come the msgspec structs that decode a good request fast
(WireOrder, WireReplace), the field-by-field check that words a bad one (field_errors),
and the documented models of the OpenAPI schema (OrderRequest, ReplaceRequest,
OrderBatch), which enforce nothing of their own. What a declaration cannot say is a
function here: a price against the order type (price_problem), postOnly against the
type and the time in force (post_only_problem), a decimal string
(venue.contract.instruments.parse_decimal), the instrument's grid and limits
(Instrument.order_terms).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from collections.abc import Collection
from typing import Annotated, Any, NamedTuple

import msgspec
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.alias_generators import to_camel

from venue._orderwire import repeated_key
from venue.api.models import OrderType, Side, TimeInForce
from venue.contract.config import VenueConfig
from venue.contract.instruments import DECIMAL_PATTERN, Instrument, NotDecimal, Problem
from venue.contract.instruments import ascii_digits, parse_decimal

CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,63}$"
# Long enough for any price or quantity on any sane grid; bounds the parsing work.
DECIMAL_MAX_LENGTH = 40
ORDER_ID_MAX = 2**63 - 1

Error = dict[str, Any]  # {"loc": [...], "msg": ..., "type": ..., "input": ...}


@dataclass(frozen=True)
class Rule:
    """One field of a request: its type (str, bool or a StrEnum of its words) and what a
    value must be."""

    python: str  # snake_case; the API spells it in camelCase
    kind: type
    required: bool = False
    default: Any = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    decimal: bool = False  # a decimal string by DECIMAL_PATTERN
    description: str = ""

    @property
    def name(self) -> str:
        return to_camel(self.python)


NEW_ORDER = (
    Rule("symbol", str, required=True, min_length=1, max_length=32,
         description="Instrument symbol, e.g. BTC-USD."),
    Rule("side", Side, required=True, description="buy or sell."),
    Rule("type", OrderType, default=OrderType.LIMIT, description="limit (default) or market."),
    Rule("time_in_force", TimeInForce,
         description="gtc, ioc, fok or day; gtc unless given, and ioc for a market order "
                     "(which never rests: ioc or fok)."),
    Rule("price", str, max_length=DECIMAL_MAX_LENGTH, decimal=True,
         description="Limit price as a decimal string on the instrument's tick grid. "
                     "Required for limit orders, absent for market orders."),
    Rule("quantity", str, required=True, max_length=DECIMAL_MAX_LENGTH, decimal=True,
         description="Quantity as a decimal string on the instrument's lot grid."),
    Rule("client_order_id", str, pattern=CLIENT_ORDER_ID_PATTERN,
         description="Your id for the order, unique per account: 1-63 of [A-Za-z0-9._:-]. "
                     "Sending it again within the venue's dedup window (ten minutes "
                     "unless spec.gateway.dedupWindow says otherwise) returns the original "
                     "order instead of a second one; after twice the window it is a new "
                     "order. "
                     "When absent, the order id serves as clientOrderId and nothing is "
                     "deduplicated."),
    Rule("post_only", bool, default=False,
         description="Rest only, never take liquidity. Limit orders that rest only "
                     "(timeInForce gtc or day)."),
)

REPLACE = (
    Rule("price", str, max_length=DECIMAL_MAX_LENGTH, decimal=True,
         description="New limit price as a decimal string on the instrument's tick grid."),
    Rule("quantity", str, max_length=DECIMAL_MAX_LENGTH, decimal=True,
         description="New total quantity (filled quantity included, as FIX OrderQty) as a "
                     "decimal string on the instrument's lot grid; must stay above what has "
                     "been filled."),
)


def _full(pattern: str) -> re.Pattern:
    """`pattern` matching a whole string: its $ also matches before a final newline."""
    return re.compile(pattern.removesuffix("$") + r"\Z")


_PATTERNS = {rule.python: _full(rule.pattern) for rule in NEW_ORDER if rule.pattern}
_DECIMAL = _full(DECIMAL_PATTERN)


# --- the fast decoders ----------------------------------------------------------------

def _struct(name: str, rules: tuple[Rule, ...]) -> type[msgspec.Struct]:
    """A msgspec struct that decodes a request every rule of which holds, and refuses any
    other (field_errors then says why)."""
    fields = []
    for rule in rules:
        if rule.kind is str:
            pattern = rule.pattern or (DECIMAL_PATTERN if rule.decimal else None)
            kind = Annotated[str, msgspec.Meta(
                min_length=rule.min_length, max_length=rule.max_length,
                pattern=_full(pattern).pattern if pattern else None)]
        else:  # bool, or a StrEnum: decoded to its member
            kind = rule.kind
        if rule.required:
            fields.append((rule.python, kind))
        else:
            default = rule.default
            fields.append((rule.python, kind | None if default is None else kind, default))
    return msgspec.defstruct(name, fields, rename="camel", forbid_unknown_fields=True,
                             kw_only=True)


WireOrder = _struct("WireOrder", NEW_ORDER)
WireReplace = _struct("WireReplace", REPLACE)
_decode_order = msgspec.json.Decoder(WireOrder).decode
_decode_any = msgspec.json.Decoder().decode
# How deep a request or a message may nest: an order is an object of scalars, a batch an
# object holding a list of them. Past it a document is refused whole, before any of it
# is worded: an error echoes the value it names, and encoding one nested hundreds deep
# ran past Python's recursion limit (a 500), as decoding one past a thousand did.
MAX_JSON_DEPTH = 32


class TooDeep(ValueError):
    """A document nested past MAX_JSON_DEPTH."""


class RepeatedKey(ValueError):
    """A document with an object that names a key twice: what it means is up to its
    reader (RFC 8259, 4; msgspec keeps the last), so it is refused."""

    def __init__(self, key: str) -> None:
        super().__init__(f"JSON names the key {echoed(key)!r} twice in one object: give "
                         "each key once")


def refuse_repeated_keys(document: Any, levels: int = 0) -> None:
    """Raises RepeatedKey when an object of `document`, which decoded, names a key twice
    (with `levels`, an object that many levels deep or less)."""
    key = repeated_key(document, levels)
    if key is Ellipsis:  # a key written with an escape: decoded keys compared
        key = _repeated_decoded_key(document, levels)
    if key is not None:
        raise RepeatedKey(key)


class _Pairs(list):
    """An object's (key, value) pairs, as json.loads reads them."""


def _repeated_decoded_key(document: Any, levels: int) -> str | None:
    try:
        value = json.loads(document if isinstance(document, str) else bytes(document),
                           object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return None
    return _first_repeated(value, levels, 1)


def _first_repeated(value: Any, levels: int, depth: int) -> str | None:
    if isinstance(value, _Pairs):
        if not levels or depth <= levels:
            seen = set()
            for key, _ in value:
                if key in seen:
                    return key
                seen.add(key)
        inner: Any = (item for _, item in value)
    elif isinstance(value, list):
        inner = value
    else:
        return None
    for item in inner:
        if (found := _first_repeated(item, levels, depth + 1)) is not None:
            return found
    return None


def decode_order(document: Any) -> Any:
    """An order (WireOrder) from JSON; raises one of DECODE_ERRORS."""
    order = _decode_order(document)
    refuse_repeated_keys(document)
    return order


def decode_json(document: bytes | str) -> Any:
    """Any JSON value nested at most MAX_JSON_DEPTH deep; raises one of DECODE_ERRORS."""
    value = _decode_any(document)
    level = [value]
    for _ in range(MAX_JSON_DEPTH):
        level = [child for item in level if isinstance(item, (dict, list))
                 for child in (item.values() if isinstance(item, dict) else item)]
        if not level:
            break
    if any(isinstance(item, (dict, list)) for item in level):
        raise TooDeep(f"JSON nested more than {MAX_JSON_DEPTH} deep")
    refuse_repeated_keys(document)
    return value


# What decoding a body or a message may raise: msgspec's errors; UnicodeDecodeError for a
# string that is not UTF-8 (msgspec lets that one through as it is); RecursionError for a
# document nested deeper than the decoder goes (about a thousand arrays or objects),
# TooDeep for one nested deeper than a request may, and RepeatedKey.
DECODE_ERRORS = (msgspec.MsgspecError, UnicodeDecodeError, RecursionError, TooDeep,
                 RepeatedKey)


def not_json(error: Exception, document: bytes | str) -> str:
    """What is wrong with a document decoding refused (one of DECODE_ERRORS)."""
    if isinstance(error, (RecursionError, TooDeep)):
        return f"JSON nested too deeply (at most {MAX_JSON_DEPTH} levels)"
    if not document.strip():  # msgspec words this as truncated input
        return "empty: a JSON object is expected"
    return str(error)


# --- the wording of what is wrong -------------------------------------------------------

# What an error echoes of the request (its input, a field's name in loc) is cut to this
# many characters, and a container to this many items; its message, which may quote
# them, to MESSAGE_CHARACTERS: an answer is never the size of what was sent.
ECHO_CHARACTERS = 256
ECHO_ITEMS = 16
MESSAGE_CHARACTERS = 1024


def echoed(value: Any, characters: int = ECHO_CHARACTERS) -> Any:
    """`value` as an error echoes it: a long text cut to `characters` (saying how long it
    was), a long array or object to its first items and then one saying how many there
    were. Echoing an echo changes nothing."""
    if isinstance(value, str):
        if len(value) <= characters:
            return value
        said = f"... ({len(value)} characters)"
        return value[:characters - len(said)] + said
    if isinstance(value, (bytes, bytearray)):
        return echoed(bytes(value).decode("utf-8", "replace"), characters)
    if isinstance(value, (list, tuple)):
        if len(value) <= ECHO_ITEMS:
            return [echoed(item) for item in value]
        return [*(echoed(item) for item in value[:ECHO_ITEMS - 1]),
                f"... ({len(value)} items)"]
    if isinstance(value, dict):
        if len(value) <= ECHO_ITEMS:
            return {echoed(key): echoed(item) for key, item in value.items()}
        items = list(value.items())[:ECHO_ITEMS - 1]
        return {**{echoed(key): echoed(item) for key, item in items},
                "...": f"({len(value)} items)"}
    return value


def error(loc: list | tuple, kind: str, message: str, value: Any = None) -> Error:
    return {"loc": [echoed(part) for part in loc], "msg": echoed(message, MESSAGE_CHARACTERS),
            "type": kind, "input": echoed(value)}


def at(prefix: tuple, errors: list[Error]) -> list[Error]:
    """`errors` with `prefix` before each loc (the channel's: ("body",), ...)."""
    return [e | {"loc": [*prefix, *e["loc"]]} for e in errors]


def problem_errors(problems: list[Problem], values: dict[str, Any]) -> list[Error]:
    return [error((p.field,), p.kind, p.message, values.get(p.field)) for p in problems]


def order_problem_errors(problems: list[Problem], order: Any) -> list[Error]:
    """The errors of what check() found wrong with a decoded order (a WireOrder)."""
    return problem_errors(problems, {
        "price": order.price, "quantity": order.quantity, "symbol": order.symbol,
        "postOnly": order.post_only, "timeInForce": order.time_in_force})


def json_invalid(message: str) -> list[Error]:
    return [error((), "json_invalid", message)]


def _field_error(rule: Rule, value: Any) -> Error | None:
    """What is wrong with one present, non-null value of `rule`, or None."""
    name, kind = rule.name, rule.kind
    if kind is bool:
        if isinstance(value, bool):
            return None
        return error((name,), "bool_parsing" if isinstance(value, str) else "bool_type",
                     f"{name} must be true or false", value)
    if not isinstance(value, str):
        return error((name,), "string_type",
                     f"{name} must be a string" + (" (a decimal string: money is never a "
                                                   "JSON number)" if rule.decimal else ""),
                     value)
    if issubclass(kind, StrEnum):
        if value in kind._value2member_map_:
            return None
        words = ", ".join(member.value for member in kind)
        return error((name,), "enum", f"{name} must be one of {words}", value)
    if rule.min_length is not None and len(value) < rule.min_length:
        return error((name,), "string_too_short",
                     f"{name} must have at least {rule.min_length} characters", value)
    if rule.max_length is not None and len(value) > rule.max_length:
        return error((name,), "string_too_long",
                     f"{name} must have at most {rule.max_length} characters", value)
    if rule.pattern is not None and _PATTERNS[rule.python].match(value) is None:
        return error((name,), "string_pattern_mismatch",
                     f"{name} must match {rule.pattern}", value)
    if rule.decimal:
        try:
            parse_decimal(value, name)
        except NotDecimal as wrong:
            return error((name,), "decimal_parsing", str(wrong), value)
    return None


def field_errors(raw: Any, rules: tuple[Rule, ...]) -> list[Error]:
    """Every field of `raw` (a decoded JSON value) that breaks its rule, in the order of
    the rules, then every field no rule declares."""
    if not isinstance(raw, dict):
        return [error((), "model_type", "an order is a JSON object", raw)]
    errors = []
    for rule in rules:
        if rule.name not in raw:
            if rule.required:
                errors.append(error((rule.name,), "missing", f"{rule.name} is required"))
            continue
        value = raw[rule.name]
        if value is None and not rule.required and rule.default is None:
            continue  # null where absence means the same
        if (wrong := _field_error(rule, value)) is not None:
            errors.append(wrong)
    return errors + unknown_field_errors(raw, {rule.name for rule in rules})


def unknown_field_errors(raw: dict[str, Any], known: Collection[str]) -> list[Error]:
    """An error for each field of `raw` not in `known`: the first ECHO_ITEMS of them, then
    one saying how many more (an answer is never the size of what was sent, nor wording
    a hundred thousand fields a second of the gateway's)."""
    unknown = [name for name in raw if name not in known]
    errors = [error((name,), "extra_forbidden", f"{name} is not a field of this request",
                    raw[name]) for name in unknown[:ECHO_ITEMS]]
    if len(unknown) > ECHO_ITEMS:
        errors.append(error((), "extra_forbidden", f"and {len(unknown) - ECHO_ITEMS} more "
                                                   "fields this request does not have"))
    return errors


# --- new orders -------------------------------------------------------------------------

class CheckedOrder(NamedTuple):
    """An order that passed every check: its instrument and terms in ticks and lots."""

    order: Any  # a WireOrder
    instrument: Instrument
    price_ticks: int
    quantity_lots: int


def price_problem(order_type: str | None, price: str | None) -> Problem | None:
    """A limit order needs a price; a market order must not have one."""
    if price is None and order_type == OrderType.LIMIT:
        return Problem("price", "price_required", "price is required for a limit order")
    if price is not None and order_type == OrderType.MARKET:
        return Problem("price", "price_not_allowed", "price must be absent for a market order")
    return None


# The times in force whose orders rest on the book (the engine's own rule: it rejects a
# post-only order of any other as unsupported).
RESTING = frozenset((TimeInForce.GTC, TimeInForce.DAY))


def post_only_problem(order_type: str | None, post_only: bool,
                      time_in_force: str | None) -> Problem | None:
    if not post_only:
        return None
    if order_type is not None and order_type != OrderType.LIMIT:
        return Problem("postOnly", "post_only_requires_limit",
                       "postOnly is allowed only on a limit order")
    if time_in_force is not None and time_in_force not in RESTING:
        return Problem("postOnly", "post_only_requires_resting",
                       f"postOnly is allowed only on an order that rests (timeInForce gtc "
                       f"or day), not {time_in_force}")
    return None


def market_problem(order_type: str | None, time_in_force: str | None) -> Problem | None:
    """A market order takes what it can at once (the engine cancels the rest)."""
    if order_type == OrderType.MARKET and time_in_force in RESTING:
        return Problem("timeInForce", "market_order_never_rests",
                       f"a market order never rests: timeInForce ioc (its default) or fok, "
                       f"not {time_in_force}")
    return None


# An order's time in force when it gives none, by its type: a market order never rests.
DEFAULT_TIME_IN_FORCE = {OrderType.LIMIT: TimeInForce.GTC, OrderType.MARKET: TimeInForce.IOC}


def check(venue: VenueConfig, order: Any) -> CheckedOrder | list[Problem]:
    """A decoded order (a WireOrder) on its instrument's grid, or what is wrong with it:
    the rules that span fields, then the instrument's. The order's time in force is
    filled in when it gave none."""
    if order.time_in_force is None:
        order.time_in_force = DEFAULT_TIME_IN_FORCE[order.type]
    # A priced limit order that is not post-only breaks none of the rules that span
    # fields (the common case, on the order path's hot loop).
    if order.type is not OrderType.LIMIT or order.price is None or order.post_only:
        problems = [p for p in (price_problem(order.type, order.price),
                                market_problem(order.type, order.time_in_force),
                                post_only_problem(order.type, order.post_only,
                                                  order.time_in_force)) if p is not None]
        if problems:
            return problems
    instrument = venue.by_symbol.get(order.symbol)
    if instrument is None:
        return [Problem("symbol", "unknown_symbol",
                        f"symbol {order.symbol!r} is not traded on this venue")]
    price_ticks, quantity_lots, problems = instrument.order_terms(order.price, order.quantity)
    return problems or CheckedOrder(order, instrument, price_ticks, quantity_lots)


def request_errors(raw: Any) -> list[Error]:
    """What is wrong with a new order that needs no instrument to say: its fields, then
    its price and postOnly against its type."""
    errors = field_errors(raw, NEW_ORDER)
    if errors:
        return errors
    order_type = raw.get("type", OrderType.LIMIT)
    problems = [p for p in (price_problem(order_type, raw.get("price")),
                            market_problem(order_type, raw.get("timeInForce")),
                            post_only_problem(order_type, raw.get("postOnly", False),
                                              raw.get("timeInForce")))
                if p is not None]
    return problem_errors(problems, raw)


def new_order(venue: VenueConfig, raw: Any) -> CheckedOrder | list[Error]:
    """A new order from a decoded JSON value (a WebSocket message, a batch item)."""
    errors = request_errors(raw)
    if errors:
        return errors
    order = msgspec.convert(raw, WireOrder)
    checked = check(venue, order)
    if isinstance(checked, CheckedOrder):
        return checked
    return order_problem_errors(checked, order)


def new_order_json(venue: VenueConfig, body: bytes) -> CheckedOrder | list[Error]:
    """A new order from a JSON body: decoded by the struct when good (the hot path),
    else field by field to say what is wrong."""
    try:
        order = decode_order(body)
    except DECODE_ERRORS:
        try:
            raw = decode_json(body)
        except DECODE_ERRORS as wrong:
            return json_invalid(not_json(wrong, body))
        return new_order(venue, raw)
    checked = check(venue, order)
    if isinstance(checked, CheckedOrder):
        return checked
    return order_problem_errors(checked, order)


# --- replaces and the orders they name --------------------------------------------------

class Terms(NamedTuple):
    """A replace's new terms, decimal strings, checked as decimals; None: unchanged."""

    price: str | None
    quantity: str | None


def replace_terms(raw: Any) -> Terms | list[Error]:
    errors = field_errors(raw, REPLACE)
    if not errors and raw.get("price") is None and raw.get("quantity") is None:
        errors = [error((), "nothing_to_replace", "give a new price, a new quantity, or both")]
    return errors or Terms(raw.get("price"), raw.get("quantity"))


def replace_terms_json(body: bytes) -> Terms | list[Error]:
    try:
        raw = decode_json(body)
    except DECODE_ERRORS as wrong:
        return json_invalid(not_json(wrong, body))
    return replace_terms(raw)


class OrderRef(NamedTuple):
    """How a client names one of its orders: the venue's id or its own clientOrderId."""

    order_id: int | None = None
    client_order_id: str | None = None

    def __str__(self) -> str:
        return str(self.order_id) if self.order_id is not None else \
            f"with clientOrderId {self.client_order_id!r}"


def order_ref(raw: dict[str, Any], also: tuple[str, ...] = ()) -> OrderRef | list[Error]:
    """The order a message names, by exactly one of orderId and clientOrderId; the
    message may hold no other field but `also`'s."""
    extra = unknown_field_errors(raw, ("orderId", "clientOrderId", *also))
    if extra:
        return extra
    order_id, client_order_id = raw.get("orderId"), raw.get("clientOrderId")
    if (order_id is None) == (client_order_id is None):
        return [error((), "order_reference",
                      "give exactly one of orderId and clientOrderId")]
    if order_id is not None:
        # As the API writes it (a string of digits), or as a JSON integer.
        number = (int(order_id) if isinstance(order_id, str) and ascii_digits(order_id)
                  and len(order_id) < 20 else order_id)
        if isinstance(number, bool) or not isinstance(number, int) \
                or not 1 <= number <= ORDER_ID_MAX:
            return [error(("orderId",), "order_id", f"orderId must be an integer from 1 to "
                                                    f"{ORDER_ID_MAX}", order_id)]
        return OrderRef(order_id=number)
    if not isinstance(client_order_id, str) or \
            _PATTERNS["client_order_id"].match(client_order_id) is None:
        return [error(("clientOrderId",), "string_pattern_mismatch",
                      f"clientOrderId must match {CLIENT_ORDER_ID_PATTERN}", client_order_id)]
    return OrderRef(client_order_id=client_order_id)


class RequestRejected(Exception):
    """What a request breaks, each as an Error, loc relative to the request: nothing was
    queued. Each channel words it (REST: 422; a batch item; a WebSocket reject)."""

    def __init__(self, errors: list[Error]) -> None:
        super().__init__("; ".join(e["msg"] for e in errors))
        self.errors = errors


# --- the documented models --------------------------------------------------------------

def _documented(name: str, rules: tuple[Rule, ...], doc: str,
                examples: list[dict]) -> type[BaseModel]:
    """The OpenAPI model of a request: its rules' fields, types and constraints, with no
    validator of its own (nothing validates a request with it)."""
    fields: dict[str, Any] = {}
    for rule in rules:
        kind: Any = rule.kind if rule.required else rule.kind | None
        extra = {"pattern": DECIMAL_PATTERN} if rule.decimal else None
        fields[rule.python] = (kind, Field(
            ... if rule.required else rule.default, min_length=rule.min_length,
            max_length=rule.max_length, pattern=rule.pattern, json_schema_extra=extra,
            description=rule.description))
    return create_model(name, __doc__=doc, __config__=ConfigDict(
        alias_generator=to_camel, extra="forbid", json_schema_extra={"examples": examples}),
        **fields)


OrderRequest = _documented(
    "OrderRequest", NEW_ORDER, "A new order.",
    [{"symbol": "BTC-USD", "side": "buy", "type": "limit", "timeInForce": "gtc",
      "price": "64250.50", "quantity": "0.25", "clientOrderId": "my-order-1"}])
ReplaceRequest = _documented(
    "ReplaceRequest", REPLACE,
    "New terms for a live order: a new limit price, a new total quantity, or both. A term "
    "left out stays as the engine holds it (after every replace before this one). Reducing the quantity at the same price "
    "keeps the order's time priority; a new price or more quantity loses it.",
    [{"quantity": "0.10"}, {"price": "64200.00", "quantity": "0.25"}])


class OrderBatch(BaseModel):
    """Up to the venue's batch size of orders, each checked and answered on its own."""

    orders: list[OrderRequest] = Field(min_length=1)  # type: ignore[valid-type]
