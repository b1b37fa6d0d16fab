"""Run a rendered container of the chart in its image with podman (runc, no daemon).

The pod's settings that matter to the process are carried over: command, environment (resolved
as the kubelet would), user and group, read-only root filesystem with a writable /tmp, no
capabilities, no privilege escalation. Networking is the host's, so the process reaches the
local cluster's services on 127.0.0.1 and its ports are the host's.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from tests.support.chart import Obj
from tests.support.images import containers_environ


class PodmanError(RuntimeError):
    """podman exited non-zero; the message holds its stderr."""


def podman(*args: str, timeout: float = 120) -> str:
    """Run podman with the project's containers configuration; returns stdout."""
    proc = subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, **containers_environ()},
    )
    if proc.returncode != 0:
        raise PodmanError(f"podman {' '.join(args[:3])} ... failed:\n{proc.stderr}")
    return proc.stdout


def qualified(image: str) -> str:
    """A chart image name as the kubelet resolves it: `cj-operator:0.1.0` ->
    `docker.io/library/cj-operator:0.1.0`."""
    first = image.split("/", 1)[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{image}"
    return image


def security_args(pod_spec: Obj, container: Obj) -> list[str]:
    """podman flags for the pod's and container's securityContext."""
    pod = pod_spec.get("securityContext", {})
    ctx = {**pod, **container.get("securityContext", {})}
    args = []
    if "runAsUser" in ctx:
        args += ["--user", f"{ctx['runAsUser']}:{ctx.get('runAsGroup', ctx['runAsUser'])}"]
    if ctx.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if ctx.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    for cap in ctx.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", cap.lower()]
    for mount in container.get("volumeMounts", []):
        args += ["--tmpfs", mount["mountPath"]]  # the chart's only volumes are emptyDirs
    return args


@dataclass
class Container:
    """A detached `podman run --network host` of `image`; removed on exit of the context."""

    image: str
    argv: list[str]
    env: dict[str, str]
    extra: list[str] = field(default_factory=list)
    name: str = field(default_factory=lambda: f"cj-test-{uuid.uuid4().hex[:10]}")

    def __enter__(self) -> Container:
        env_args = [arg for key, value in self.env.items() for arg in ("--env", f"{key}={value}")]
        podman(
            "run",
            "--detach",
            "--name",
            self.name,
            "--network",
            "host",
            "--pull",
            "never",
            *self.extra,
            *env_args,
            self.image,
            *self.argv,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        podman("rm", "--force", "--time", "10", self.name, timeout=60)

    def logs(self) -> str:
        proc = subprocess.run(
            ["podman", "logs", "--tail", "40", self.name],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
            env={**os.environ, **containers_environ()},
        )
        return proc.stdout + proc.stderr

    def running(self) -> bool:
        return podman("inspect", "--format", "{{.State.Running}}", self.name).strip() == "true"

    def wait_http_ok(self, url: str, timeout: float) -> float:
        """Seconds until `url` answered 200; AssertionError with the container's log when it
        exits or the time runs out."""
        start = time.monotonic()
        last = "no answer"
        while time.monotonic() - start < timeout:
            try:
                response = httpx.get(url, timeout=2)
                if response.status_code == 200:
                    return time.monotonic() - start
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            if not self.running():
                raise AssertionError(f"{self.name} exited before {url} answered:\n{self.logs()}")
            time.sleep(0.5)
        raise AssertionError(f"{url} not 200 after {timeout} s ({last}):\n{self.logs()}")
