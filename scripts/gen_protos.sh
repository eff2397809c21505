#!/usr/bin/env sh
# Regenerate the gRPC stubs from protos/ (needs the test extra: grpcio-tools).
# The -I mapping makes the generated imports absolute inside the hub package.
set -eu
cd "$(dirname "$0")/.."
OUT=hub/entrypoints/grpc/_gen
python -m grpc_tools.protoc -I"$OUT=protos" --python_out=. --pyi_out=. --grpc_python_out=. \
    protos/market_data.proto
