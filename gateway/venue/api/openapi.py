"""Request bodies documented in the OpenAPI schema while the route reads the body itself.

The order routes decode their bodies themselves (venue.api.order_rules), so FastAPI
does not see the pydantic model that documents them. request_body() names the model in
a route's openapi_extra, and add_request_schemas() puts the model, and the models it
refers to, into the document's components, where the route's $ref points.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

_REF = "#/components/schemas/{model}"
_MODELS: dict[str, type[BaseModel]] = {}


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """A route's openapi_extra: a required JSON body described by `model`."""
    _MODELS[model.__name__] = model
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": _REF.format(model=model.__name__)}}}}}


def add_request_schemas(app: FastAPI) -> None:
    """Make `app`'s OpenAPI document carry the schemas request_body() refers to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()  # FastAPI keeps it as app.openapi_schema
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, model in _MODELS.items():
            schema = model.model_json_schema(by_alias=True, ref_template=_REF)
            for referred, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(referred, definition)
            schemas.setdefault(name, schema)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
