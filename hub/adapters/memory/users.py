"""Users, accounts and refresh tokens held in dicts. One asyncio loop, so no locks are needed:
no method awaits between reading and writing."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from hub.domain.accounts import Account
from hub.domain.errors import EmailTaken
from hub.domain.tokens import RefreshToken
from hub.domain.users import Role, User


class MemoryUsers:
    def __init__(self) -> None:
        self._by_id: dict[UUID, User] = {}
        self._by_email: dict[str, UUID] = {}

    async def add(self, user: User) -> None:
        if user.email in self._by_email:
            raise EmailTaken(f"{user.email} is already registered")
        self._by_id[user.id] = user
        self._by_email[user.email] = user.id

    async def get(self, user_id: UUID) -> User | None:
        return self._by_id.get(user_id)

    async def by_email(self, email: str) -> User | None:
        user_id = self._by_email.get(email)
        return None if user_id is None else self._by_id[user_id]

    async def set_role(self, email: str, role: Role) -> bool:
        user = await self.by_email(email)
        if user is None:
            return False
        self._by_id[user.id] = msgspec.structs.replace(user, role=role)
        return True


class MemoryAccounts:
    def __init__(self) -> None:
        self._by_user: dict[UUID, Account] = {}
        self._by_id: dict[UUID, Account] = {}

    async def add(self, account: Account) -> None:
        self._by_user[account.user_id] = account
        self._by_id[account.id] = account

    async def get(self, account_id: UUID) -> Account | None:
        return self._by_id.get(account_id)

    async def for_user(self, user_id: UUID) -> Account | None:
        return self._by_user.get(user_id)


class MemoryRegistrar:
    """Writes a user and its account together: the email check happens before either write."""

    def __init__(self, users: MemoryUsers, accounts: MemoryAccounts) -> None:
        self._users = users
        self._accounts = accounts

    async def add_user_with_account(self, user: User, account: Account) -> None:
        await self._users.add(user)
        await self._accounts.add(account)


class MemoryRefreshTokens:
    def __init__(self) -> None:
        self._by_hash: dict[str, RefreshToken] = {}

    async def add(self, token: RefreshToken) -> None:
        self._by_hash[token.token_hash] = token

    async def use(self, token_hash: str, now: datetime) -> RefreshToken | None:
        token = self._by_hash.get(token_hash)
        if token is not None and token.used_at is None:
            self._by_hash[token_hash] = msgspec.structs.replace(token, used_at=now)
        return token

    async def revoke_family(self, family_id: UUID, now: datetime) -> None:
        for key, token in self._by_hash.items():
            if token.family_id == family_id and token.revoked_at is None:
                self._by_hash[key] = msgspec.structs.replace(token, revoked_at=now)
