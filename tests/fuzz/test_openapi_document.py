"""The app's /openapi.json is a valid OpenAPI 3.1 document (checked offline: the validator ships
the 3.1 meta-schemas, and the document's $refs are all local)."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from starlette.testclient import TestClient

from hub.config import Settings
from hub.entrypoints.http.app import create_app


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    with TestClient(create_app(Settings())) as client:
        r = client.get("/openapi.json")
        assert r.status_code == 200
        document: dict[str, Any] = r.json()
        return document


def refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def test_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1.")
    validate(spec, cls=OpenAPIV31SpecValidator)


def test_every_ref_is_local(spec: dict[str, Any]) -> None:
    assert refs(spec), "expected component $refs"
    assert all(ref.startswith("#/components/") for ref in refs(spec))


def test_the_validator_catches_a_broken_document(spec: dict[str, Any]) -> None:
    # Guards the check above against silently accepting anything.
    broken = {**spec, "paths": {"/x": {"get": {"responses": {"200": {"description": 5}}}}}}
    with pytest.raises(OpenAPIValidationError):
        validate(broken, cls=OpenAPIV31SpecValidator)
