"""The gRPC server, started inside the API process's event loop, with the standard health
service and reflection. Service implementations register themselves here as they appear."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hub.bootstrap import Container
from hub.entrypoints.grpc._gen import market_data_pb2 as pb
from hub.entrypoints.grpc._gen import market_data_pb2_grpc as pb_grpc
from hub.entrypoints.grpc.auth import AuthInterceptor
from hub.entrypoints.grpc.market_data import MarketDataServicer

log = structlog.get_logger("hub.grpc")

GRACE_S = 5.0


@asynccontextmanager
async def grpc_server(container: Container, host: str, port: int) -> AsyncIterator[int]:
    """Serve until the block exits; yields the bound port (useful when port is 0)."""
    server = grpc.aio.server(interceptors=[AuthInterceptor(container.auth.authenticate)])
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    pb_grpc.add_MarketDataServiceServicer_to_server(  # type: ignore[no-untyped-call]
        MarketDataServicer(container.market_data, container.engine), server
    )
    names = [
        pb.DESCRIPTOR.services_by_name["MarketDataService"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    ]
    reflection.enable_server_reflection(names, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    log.info("gRPC listening", address=f"{host}:{bound}")
    try:
        yield bound
    finally:
        await health_servicer.enter_graceful_shutdown()
        await server.stop(GRACE_S)
