"""The benchmarks' shared harness, one concept per module; the scripts in benchmarks/ stay thin.

- config:         where things are (HUB_BENCH_ROOT), the services' URLs, the JWT secret
- report:         the result JSON: versions, host, commit, where it is written
- stats:          percentiles, latency summaries, medians over runs, slopes
- cpu:            CPU meters for processes, the host and the services
- procs:          free ports, spawning and stopping processes, readiness
- hub:            Hub's own processes (`hub migrate`, `serve`, `worker`, `feed`) and /metrics
- services:       fresh PostgreSQL schemas, Redis keys and RabbitMQ queues, and their cleanup
- users:          users registered through the API, tokens, state given through the API
- httpload:       the open-loop HTTP/1.1 load generator
- cost:           what a request costs (CPU per request, per route, against a peer)
- wsclient:       the minimal asyncio WebSocket client (the Python load clients)
- wsload:         the C load client (benchmarks/wsload): build and drive it
- node:           Node.js peers installed from npm into a temp dir
- rate_servers:   engine-only servers publishing at a rate set over stdin (fanout, fanout_scale_*)
- market_server:  Hub's engine on the Redis broker, 200 channels (fanout_scale_market, cluster)
- publisher:      an open-loop publisher process with its own Engine, publish-call latency (cluster)
- redis_targets:  a single Redis and a 3+3 Redis Cluster started for the run, their CPU (cluster)
- cluster_report: the cluster benchmark's summary and chart
- scale:          the fanout_scale_* scripts' flags and report
- real_targets:   the real quote path's candidates (fanout_real_*)
- real_runs:      the fanout_real_* scripts' flags, runs and report
- peers:          the minimal Starlette peers measured beside Hub
- orderflow:      market orders offered open loop, and their `filled` events on the sockets
- orders_report:  the orders benchmark's summary and chart
- grpc_load:      closed-loop gRPC callers in their own processes
- profiling:      py-spy recordings and their summaries
- charts:         matplotlib figures next to the JSON
"""
