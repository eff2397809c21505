"""A real Redis Cluster on this machine, for the tests: 3 masters and 3 replicas on free ports,
each `redis-server --cluster-enabled yes` in a temporary directory, joined with
`redis-cli --cluster create`. Nothing is persisted (`--save ''`, no AOF); `stop` kills every
process and removes the directory."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

#: Short, so that a failover (a replica promoted after its master stops answering) takes about
#: two seconds instead of the default fifteen.
NODE_TIMEOUT_MS = 1000


class ClusterUnavailable(Exception):
    """The local cluster could not be started (no redis-server, or it never became healthy)."""


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_ports(count: int) -> list[int]:
    """Ports P whose cluster bus port P + 10000 is free as well."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port < 55535 and port not in ports and _free(port + 10000):
            ports.append(port)
    return ports


def cli(port: int, *args: str, timeout: float = 10) -> str:
    """`redis-cli -p PORT ARGS...`; its output (an error reply is returned, not raised)."""
    done = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout.strip()


def master_of(client: RedisCluster, key: str) -> int:
    """The port of the master that owns `key`, in `client`'s slot map."""
    node: ClusterNode | None = client.get_node_from_key(key)
    assert node is not None
    return int(node.port)


@dataclass
class LocalCluster:
    """The running nodes; `masters` and `replicas` are ports as created (a failover swaps
    roles: ask `role` for the current one)."""

    root: Path
    masters: list[int]
    replicas: list[int]
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def ports(self) -> list[int]:
        return [*self.masters, *self.replicas]

    def url(self, port: int | None = None) -> str:
        """A URL naming one node, a running one by default (any will do: a client finds the
        others)."""
        return f"redis://127.0.0.1:{port or next(iter(self.processes))}/0"

    def start_node(self, port: int) -> None:
        directory = self.root / str(port)
        directory.mkdir(exist_ok=True)
        self.processes[port] = subprocess.Popen(
            [
                "redis-server",
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                # Any replica may take over, however long it was cut off (tests kill masters).
                "--cluster-replica-validity-factor", "0",
                # A replica (re)joining syncs at once (the default waits 5 s for company).
                "--repl-diskless-sync-delay", "0",
                "--dir", str(directory),
                "--save", "",
                "--appendonly", "no",
                "--logfile", str(directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(lambda: cli(port, "PING") == "PONG", f"node {port} did not answer PING")

    def kill(self, port: int) -> None:
        """SIGKILL one node (no shutdown, no goodbye to the cluster)."""
        process = self.processes.pop(port)
        process.kill()
        process.wait(timeout=10)

    def pause(self, port: int) -> None:
        """SIGSTOP one node: it answers nothing, and its sockets stay open."""
        self.processes[port].send_signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        self.processes[port].send_signal(signal.SIGCONT)

    def role(self, port: int) -> str:
        """ "master" or "slave", as the node itself says."""
        return cli(port, "ROLE").splitlines()[0]

    def wait_healthy(self, timeout: float = 30) -> None:
        """Every running node reports cluster_state:ok and 3 masters that have not failed, and
        every replica is in sync with its master."""

        def healthy() -> bool:
            for port in self.processes:
                if "cluster_state:ok" not in cli(port, "CLUSTER", "INFO"):
                    return False
                nodes = [n.split() for n in cli(port, "CLUSTER", "NODES").splitlines()]
                masters = [n for n in nodes if "master" in n[2] and "fail" not in n[2]]
                if len(masters) != 3:
                    return False
                if cli(port, "ROLE").splitlines()[0] == "slave" and (
                    "master_link_status:up" not in cli(port, "INFO", "replication")
                ):
                    return False
            return True

        _wait(healthy, "the cluster did not become healthy", timeout)

    def replicas_listed(self) -> bool:
        """CLUSTER SLOTS shows a replica for every slot range, on every node (Redis lists one
        there only once the others have heard that it has data: a second or two after it
        synced), so clients that read it know which masters have replicas."""
        for port in self.processes:
            with Redis(port=port) as node:
                ranges = node.execute_command("CLUSTER SLOTS")
            if len(ranges) != 3 or not all(len(r) > 3 for r in ranges):  # start, end, master..
                return False
        return True

    def stop(self) -> None:
        for port in list(self.processes):
            self.kill(port)
        shutil.rmtree(self.root, ignore_errors=True)


def _wait(condition: Callable[[], bool], message: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ClusterUnavailable(message)
        time.sleep(0.05)


def start_cluster() -> LocalCluster:
    """Start 3 masters with one replica each; the caller must `stop()` it."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise ClusterUnavailable("redis-server and redis-cli are not installed")
    ports = _free_ports(6)
    cluster = LocalCluster(
        Path(tempfile.mkdtemp(prefix="hub-redis-cluster-")), ports[:3], ports[3:]
    )
    try:
        for port in ports:
            cluster.start_node(port)
        created = subprocess.run(
            [
                "redis-cli", "--cluster", "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas", "1", "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )  # fmt: skip
        if created.returncode != 0:
            raise ClusterUnavailable(f"redis-cli --cluster create failed:\n{created.stdout}")
        cluster.wait_healthy()
        # redis-cli pairs replicas with masters itself: read back who is which.
        cluster.masters = [p for p in ports if cluster.role(p) == "master"]
        cluster.replicas = [p for p in ports if p not in cluster.masters]
    except BaseException:
        cluster.stop()
        raise
    return cluster
