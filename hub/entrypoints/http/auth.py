"""POST /api/v1/auth/{register,login,refresh,logout} and GET /api/v1/auth/me."""

from __future__ import annotations

from hub.entrypoints.http.routing import Call, Operation, operation
from hub.entrypoints.http.schemas import (
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    TokenResponse,
    UserOut,
)
from hub.services.auth import TokenPair
from hub.services.views import AccountView


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(pair.access_token, pair.refresh_token, pair.expires_in)


async def register(call: Call) -> RegisterResponse:
    body: RegisterRequest = call.body
    client = call.request.client.host if call.request.client else "unknown"
    user, account = await call.hub.auth.register(body.email, body.password, body.name, client)
    return RegisterResponse(UserOut.of(user), AccountView.of(account))


async def login(call: Call) -> TokenResponse:
    body: LoginRequest = call.body
    client = call.request.client.host if call.request.client else "unknown"
    return _tokens(await call.hub.auth.login(body.email, body.password, client))


async def refresh(call: Call) -> TokenResponse:
    body: RefreshRequest = call.body
    return _tokens(await call.hub.auth.refresh(body.refresh_token))


async def logout(call: Call) -> None:
    body: RefreshRequest = call.body
    await call.hub.auth.logout(body.refresh_token)


async def me(call: Call) -> UserOut:
    return UserOut.of(await call.hub.auth.user(call.user_id))


TAGS = ("auth",)
OPERATIONS: list[Operation] = [
    operation(
        "POST",
        "/api/v1/auth/register",
        register,
        "Register a user and open a paper account",
        request=RegisterRequest,
        response=RegisterResponse,
        status=201,
        auth=False,
        tags=TAGS,
        errors=(400, 409, 413, 422),
    ),
    operation(
        "POST",
        "/api/v1/auth/login",
        login,
        "Exchange email and password for tokens",
        request=LoginRequest,
        response=TokenResponse,
        auth=False,
        tags=TAGS,
        errors=(400, 401, 422, 429),
    ),
    operation(
        "POST",
        "/api/v1/auth/refresh",
        refresh,
        "Rotate a refresh token (a reused one revokes its session)",
        request=RefreshRequest,
        response=TokenResponse,
        auth=False,
        tags=TAGS,
        errors=(400, 401, 422),
    ),
    operation(
        "POST",
        "/api/v1/auth/logout",
        logout,
        "Revoke the session of a refresh token",
        request=RefreshRequest,
        status=204,
        auth=False,
        tags=TAGS,
        errors=(400, 422),
    ),
    operation(
        "GET",
        "/api/v1/auth/me",
        me,
        "The authenticated user",
        response=UserOut,
        tags=TAGS,
        errors=(401,),
    ),
]
