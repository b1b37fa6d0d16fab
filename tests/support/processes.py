"""Run our own services (API, workers, operator) as real local processes in tests.

The local cluster has no kubelet, so integration and end-to-end tests start the project's
processes themselves and point them at the cluster's services.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

from tests.support.devcluster import REPO_ROOT


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ManagedProcess:
    """One child process with its own log file, stopped by SIGTERM (then SIGKILL).

    `argv` runs with the venv's Python when it starts with "-m"; `env` is added to a copy of
    os.environ. The log is at `log_path`; `tail()` returns its end for assertion messages.
    `url` is the HTTP base URL the process serves, if any (for callers; not used here).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        url: str = "",
    ) -> None:
        self.name = name
        self.url = url
        self.argv = [sys.executable, *argv] if argv[0] == "-m" else list(argv)
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        """Start the process (its own process group); returns self."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `check` until true; raises AssertionError with the log tail on timeout or exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{self.name} exited while waiting for {what}:\n{self.tail()}")
            try:
                if check():
                    return
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: no {what} after {timeout} s:\n{self.tail()}")

    def wait_http_ok(self, url: str, timeout: float = 30.0) -> None:
        """Wait until GET `url` answers 2xx."""
        self.wait_until(lambda: httpx.get(url, timeout=1.0).is_success, timeout, f"2xx from {url}")

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the process group at once (a crash, for tests)."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            assert self.proc is not None
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait up to `timeout` s, then SIGKILL; returns the exit code."""
        if self.proc is None:
            return None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def tail(self, lines: int = 60) -> str:
        """The last `lines` lines of the process's log."""
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
