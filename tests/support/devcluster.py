"""The local cluster that `hack/devcluster` runs: PostgreSQL, Redis, Kafka, Kubernetes API;
and the cluster with a node (`hack/devcluster up --node`) the end-to-end test on a node uses."""

from __future__ import annotations

import hashlib
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


def _run(
    *args: str, state_dir: Path | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"CJ_DEVCLUSTER_DIR": str(state_dir)} if state_dir else {})}
    return subprocess.run(
        [str(DEVCLUSTER), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=env,
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


def _env_lines(state_dir: Path | None = None) -> dict[str, str]:
    proc = _run("env", state_dir=state_dir)
    if proc.returncode != 0:
        raise RuntimeError(f"hack/devcluster env failed: {proc.stderr}")
    values: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        values[key] = value
    return values


def read_env(state_dir: Path | None = None) -> ClusterEnv:
    """Parse `hack/devcluster env`; raises RuntimeError when the cluster has no state."""
    values = _env_lines(state_dir)
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


@dataclass(frozen=True)
class NodeClusterEnv:
    """A cluster with a node: its connection settings from the host, and the addresses pods
    use to reach the same services (the host as pods see it, `CJ_POD_*` of `env`)."""

    cluster: ClusterEnv
    state_dir: Path
    node_name: str
    pod_host: str
    pod_database_port: int
    pod_redis_port: int
    pod_kafka_bootstrap_servers: str


def node_state_dir() -> Path:
    """State directory of the node cluster: $CJ_NODE_DEVCLUSTER_DIR, else the default cluster's
    (`$CJ_DEVCLUSTER_DIR` or /tmp/cj-devcluster-<hash of the clone's path>) + `-node`."""
    if override := os.environ.get("CJ_NODE_DEVCLUSTER_DIR"):
        return Path(override)
    default = os.environ.get("CJ_DEVCLUSTER_DIR") or (
        "/tmp/cj-devcluster-" + hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:8]
    )
    return Path(f"{default}-node")


def node_check(state_dir: Path) -> str | None:
    """None when this machine can run the node, else `hack/devcluster node-check`'s reasons."""
    proc = _run("node-check", state_dir=state_dir, timeout=60)
    return None if proc.returncode == 0 else (proc.stderr.strip() or proc.stdout.strip())


def node_is_running(state_dir: Path) -> bool:
    """True when every component of the node cluster, node included, is up."""
    proc = _run("status", state_dir=state_dir, timeout=60)
    return proc.returncode == 0 and "kubelet " in proc.stdout


def node_up(state_dir: Path) -> None:
    """`hack/devcluster up --node` (building what is missing: cold, tens of minutes);
    raises RuntimeError with its output."""
    proc = _run("up", "--node", state_dir=state_dir, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"hack/devcluster up --node failed:\n{proc.stdout}\n{proc.stderr}")


def node_down(state_dir: Path) -> None:
    """Stop the node cluster's processes (pods first)."""
    _run("down", state_dir=state_dir, timeout=300)


def read_node_env(state_dir: Path) -> NodeClusterEnv:
    """The node cluster's settings; raises RuntimeError when it has no node."""
    values = _env_lines(state_dir)
    if "CJ_POD_HOST" not in values:
        raise RuntimeError(f"the cluster in {state_dir} has no node (hack/devcluster up --node)")
    return NodeClusterEnv(
        cluster=read_env(state_dir),
        state_dir=state_dir,
        node_name=values["CJ_NODE_NAME"],
        pod_host=values["CJ_POD_HOST"],
        pod_database_port=int(values["CJ_POD_DATABASE_PORT"]),
        pod_redis_port=int(values["CJ_POD_REDIS_PORT"]),
        pod_kafka_bootstrap_servers=values["CJ_POD_KAFKA_BOOTSTRAP_SERVERS"],
    )
