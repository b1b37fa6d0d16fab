"""A throw-away `redis-server` of a test's own (loopback, free port, its own directory).

For what the shared cluster's Redis must not be used for: other eviction policies, restarts.
The binary is the Debian package's (/usr/bin/redis-server, as hack/lib/services.sh uses).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.processes import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@dataclass
class OwnRedis:
    """A running redis-server: its port, data directory and flags; `restart` keeps both."""

    port: int
    directory: Path
    flags: tuple[str, ...]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait (up to 10 s) until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                *(REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(self.directory), "--daemonize", "no", *self.flags),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (Redis flushes its AOF and exits) or SIGKILL; waits for the exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(timeout=10)

    def restart(self, *, kill: bool = False) -> None:
        """Stop and start again on the same port and directory."""
        self.stop(kill=kill)
        self.start()


@contextmanager
def own_redis(directory: Path, flags: Sequence[str]) -> Iterator[OwnRedis]:
    """A redis-server with `flags` (e.g. `--maxmemory-policy allkeys-lru`), stopped after."""
    server = OwnRedis(free_port(), directory, tuple(flags))
    server.start()
    try:
        yield server
    finally:
        server.stop(kill=True)
