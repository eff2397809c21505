"""GET /api/v1/account."""

from __future__ import annotations

from hub.entrypoints.http.routing import Call, Operation, operation
from hub.entrypoints.http.schemas import AccountOut


async def get_account(call: Call) -> AccountOut:
    return AccountOut.of(await call.hub.accounts.get(call.user_id))


OPERATIONS: list[Operation] = [
    operation(
        "GET",
        "/api/v1/account",
        get_account,
        "Cash, reserved cash, buying power and equity of the caller's account",
        response=AccountOut,
        tags=("account",),
        errors=(401,),
    ),
]
