"""The local cluster that `hack/devcluster` runs: PostgreSQL, Redis, Kafka, Kubernetes API."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVCLUSTER = REPO_ROOT / "hack" / "devcluster"


@dataclass(frozen=True)
class ClusterEnv:
    """Connection settings of the running local cluster (the `hack/devcluster env` lines)."""

    kubeconfig: str
    database_url: str
    redis_url: str
    kafka_bootstrap_servers: str
    tools_bin: Path

    @property
    def kubectl(self) -> Path:
        """The kubectl built at the API server's own release."""
        return self.tools_bin / "kubectl"

    def as_environ(self) -> dict[str, str]:
        """The variables, named as our processes read them, for a subprocess environment."""
        return {
            "KUBECONFIG": self.kubeconfig,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
        }


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEVCLUSTER), *args], capture_output=True, text=True, check=False, timeout=1800
    )


def is_running() -> bool:
    """True when every component of the local cluster is up."""
    return _run("status").returncode == 0


def up() -> None:
    """Start the local cluster (building what is missing); raises RuntimeError with its log."""
    proc = _run("up")
    if proc.returncode != 0:
        raise RuntimeError(f"hack/devcluster up failed:\n{proc.stdout}\n{proc.stderr}")


def down() -> None:
    """Stop the processes `hack/devcluster up` started."""
    _run("down")


def read_env() -> ClusterEnv:
    """Parse `hack/devcluster env`; raises RuntimeError when the cluster has no state."""
    proc = _run("env")
    if proc.returncode != 0:
        raise RuntimeError(f"hack/devcluster env failed: {proc.stderr}")
    values: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        values[key] = value
    return ClusterEnv(
        kubeconfig=values["KUBECONFIG"],
        database_url=values["DATABASE_URL"],
        redis_url=values["REDIS_URL"],
        kafka_bootstrap_servers=values["KAFKA_BOOTSTRAP_SERVERS"],
        tools_bin=Path(values["CJ_TOOLS_BIN"]),
    )


def keep_running() -> bool:
    """CJ_KEEP_CLUSTER=1 leaves a cluster the tests started running afterwards."""
    return os.environ.get("CJ_KEEP_CLUSTER", "") == "1"
