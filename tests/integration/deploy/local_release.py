"""Run the chart's rendered workloads as local processes: the test plays the kubelet.

The local cluster has no kubelet, so a rendered Deployment or Job is run here with its own
container command and the environment the kubelet would give it: literal values, Secrets
(from the test's stand-in values, or the real Secret through kubectl), the downward API
(`metadata.name` is the process name), then Kubernetes' $(VAR) expansion.
"""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.chart import Obj, containers

SecretLookup = Callable[[str, str], str]


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of an env value: defined names expand, `$$` escapes."""

    def sub(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, value)


def resolve_env(container: Obj, secret: SecretLookup, pod_name: str) -> dict[str, str]:
    """A container's environment as the kubelet builds it, in order."""
    env: dict[str, str] = {}
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = expand(str(entry["value"]), env)
            continue
        ref = entry["valueFrom"]
        if "secretKeyRef" in ref:
            env[entry["name"]] = secret(ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
        elif ref.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[entry["name"]] = pod_name
        else:
            raise AssertionError(f"the local run does not support env source {ref}")
    return env


def rendered_secrets(objects: Sequence[Obj]) -> dict[tuple[str, str], str]:
    """The Secrets the chart itself renders (the generated API token), by (name, key)."""
    return {
        (o["metadata"]["name"], key): base64.b64decode(value).decode()
        for o in objects
        if o["kind"] == "Secret"
        for key, value in (o.get("data") or {}).items()
    }


@dataclass
class LocalWorkload:
    """One rendered container, ready to run here: argv (venv scripts) and environment."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def local_workload(workload: Obj, secret: SecretLookup, pod_name: str) -> LocalWorkload:
    """The single container of a Deployment or Job as a local command."""
    (container,) = containers(workload)
    command = container["command"]
    argv = [str(Path(sys.executable).parent / command[0]), *command[1:]]
    return LocalWorkload(pod_name, argv, resolve_env(container, secret, pod_name))
