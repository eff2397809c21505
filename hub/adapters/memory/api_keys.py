"""API keys in process memory. One asyncio loop: no method awaits between its check and its
write, so the per-user count cannot be raced."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from msgspec.structs import replace

from hub.domain.api_keys import ApiKey
from hub.domain.errors import TooManyApiKeys


class MemoryApiKeys:
    def __init__(self) -> None:
        self._by_key_id: dict[str, ApiKey] = {}

    async def add(self, key: ApiKey, limit: int) -> None:
        live = sum(
            1 for k in self._by_key_id.values() if k.user_id == key.user_id and not k.revoked
        )
        if live >= limit:
            raise TooManyApiKeys(f"at most {limit} API keys per user: revoke one first")
        self._by_key_id[key.key_id] = key

    async def for_user(self, user_id: UUID) -> list[ApiKey]:
        mine = [k for k in self._by_key_id.values() if k.user_id == user_id and not k.revoked]
        return sorted(mine, key=lambda k: (k.created_at, k.id))

    async def by_key_id(self, key_id: str) -> ApiKey | None:
        return self._by_key_id.get(key_id)

    async def revoke(self, user_id: UUID, key_id: UUID, at: datetime) -> ApiKey | None:
        for key in self._by_key_id.values():
            if key.id == key_id and key.user_id == user_id and not key.revoked:
                revoked = replace(key, revoked_at=at)
                self._by_key_id[key.key_id] = revoked
                return revoked
        return None
