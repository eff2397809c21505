"""Reading a user's cash account."""

from __future__ import annotations

from uuid import UUID

from hub.domain.accounts import Account
from hub.domain.errors import NotFound
from hub.services.ports import AccountRepository


class AccountService:
    def __init__(self, accounts: AccountRepository) -> None:
        self._accounts = accounts

    async def get(self, user_id: UUID) -> Account:
        account = await self._accounts.for_user(user_id)
        if account is None:
            raise NotFound("no account for this user")
        return account
