"""The gateway's OpenAPI document: every reference resolves, the order bodies documented."""

from __future__ import annotations

from typing import Any

from venue.api.app import create_app
from venue.contract.config import Settings


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in references(value)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_every_reference_in_the_document_resolves() -> None:
    document = create_app(Settings()).openapi()
    refs = references(document)
    assert refs
    for ref in refs:
        resolve(document, ref)


def test_order_bodies_are_documented_by_their_models() -> None:
    document = create_app(Settings()).openapi()

    def body(path: str) -> dict[str, Any]:
        request = document["paths"][path]["post"]["requestBody"]
        assert request["required"] is True
        return resolve(document, request["content"]["application/json"]["schema"]["$ref"])

    single = body("/v1/orders")
    assert {"symbol", "side", "quantity"} <= set(single["required"])
    assert "clientOrderId" in single["properties"]
    batch = body("/v1/orders/batch")
    assert resolve(document, batch["properties"]["orders"]["items"]["$ref"]) == single
