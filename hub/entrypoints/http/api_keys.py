"""/api/v1/api-keys: make, list and revoke the caller's API keys (bearer auth only, so that a
key cannot make more keys). The secret is in the create answer and nowhere else, ever."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from hub.domain.api_keys import MAX_KEYS_PER_USER, MAX_NAME, ApiKey
from hub.domain.errors import NotFound
from hub.entrypoints.http.routing import Call, Operation, operation

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)]


class CreateApiKey(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


class ApiKeyOut(msgspec.Struct):
    id: UUID
    name: str
    key_id: str
    created_at: datetime

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(key.id, key.name, key.key_id, key.created_at)


class ApiKeyCreated(msgspec.Struct):
    """As listed, plus the secret: shown this once, stored only as a hash."""

    id: UUID
    name: str
    key_id: str
    secret: str
    created_at: datetime


async def create(call: Call) -> ApiKeyCreated:
    body: CreateApiKey = call.body
    made = await call.hub.api_keys.create(call.user_id, body.name)
    key = made.key
    return ApiKeyCreated(key.id, key.name, key.key_id, made.secret, key.created_at)


async def list_keys(call: Call) -> list[ApiKeyOut]:
    return [ApiKeyOut.of(k) for k in await call.hub.api_keys.keys(call.user_id)]


async def revoke(call: Call) -> None:
    raw = call.request.path_params["key_id"]
    try:
        key_id = UUID(raw)
    except ValueError:
        raise NotFound(f"no API key {raw}") from None
    await call.hub.api_keys.revoke(call.user_id, key_id)


TAGS = ("api keys",)
OPERATIONS: list[Operation] = [
    operation(
        "POST",
        "/api/v1/api-keys",
        create,
        f"Make an API key (at most {MAX_KEYS_PER_USER} live per user); the answer carries its "
        "secret, shown this once",
        request=CreateApiKey,
        response=ApiKeyCreated,
        status=201,
        tags=TAGS,
        errors=(400, 401, 404, 413, 422),
    ),
    operation(
        "GET",
        "/api/v1/api-keys",
        list_keys,
        "The caller's live API keys, oldest first (no secrets)",
        response=list[ApiKeyOut],
        tags=TAGS,
        errors=(401,),
    ),
    operation(
        "DELETE",
        "/api/v1/api-keys/{key_id}",
        revoke,
        "Revoke an API key: it stops working at once on this node, within seconds on others",
        status=204,
        tags=TAGS,
        errors=(401, 404),
    ),
]
