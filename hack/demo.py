"""`make demo`: the main job on the local cluster, left running for the user to explore.

Starts (or reuses) the local cluster, installs the CRD, starts the operator, the provider API
and two workers as background processes (pids in <state>/app/, stopped by `make down`),
submits a CJBatch, shows live progress and prints the final ranking.

    .venv/bin/python -m hack.demo                      # examples/demo-batch.yaml
    .venv/bin/python -m hack.demo --essays my.csv      # your essays (cjctl submit)

Run it from the repository root as a module (as `make demo` does), so `tests.support` imports.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from tests.support import devcluster
from tests.support.devcluster import REPO_ROOT
from tests.support.stack import Stack, StackConfig

NAMESPACE = "cj-demo"
DEMO_BATCH = REPO_ROOT / "examples" / "demo-batch.yaml"
GENERIC_PROMPT = REPO_ROOT / "examples" / "generic-prompt.txt"


def _say(text: str) -> None:
    print(f"\033[1m==> {text}\033[0m", flush=True)


def _app_dir(cluster: devcluster.ClusterEnv) -> Path:
    return Path(cluster.kubeconfig).parent / "app"


def _pid_alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def _start_stack(cluster: devcluster.ClusterEnv) -> None:
    """Start the operator, API and workers unless their pid files name live processes."""
    app_dir = _app_dir(cluster)
    names = ["provider-api", "worker-0", "worker-1", "operator"]
    if all(_pid_alive(app_dir / f"{n}.pid") for n in names):
        _say(f"operator, provider API and workers already running (logs in {app_dir})")
        return
    subprocess.run([str(REPO_ROOT / "hack" / "devcluster"), "down-app"], check=True)
    config = StackConfig(
        cluster=cluster,
        database_url=cluster.database_url,
        callback_topic="huleedu.llm_provider.comparison_result.v1",
        completion_topic="huleedu.cj_assessment.completed.v1",
        dead_letter_topic="huleedu.llm_provider.comparison_result.v1.dlq",
        redis_prefix="cj:demo:",
        group="cj-demo",
        # Only the demo's namespace: tests may share this cluster with their own operators.
        namespace=NAMESPACE,
        workers=2,
        # The processes' own judges (CJ_ENABLED_PROVIDERS unset, or exported by the user):
        # the demo's offline judge is one; the test judges mock and simulated are not.
        enabled_providers=None,
    )
    app_dir.mkdir(parents=True, exist_ok=True)
    _say(f"starting the provider API, two workers and the operator (logs in {app_dir})")
    stack = Stack(config, app_dir).start()
    for proc in stack.processes():
        (app_dir / f"{proc.name}.pid").write_text(str(proc.pid))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--essays", type=Path, help="CSV file or folder of essays (cjctl submit)")
    parser.add_argument("--prompt-file", type=Path, default=GENERIC_PROMPT)
    parser.add_argument("--name", help="CJBatch name (default: from the file name)")
    args = parser.parse_args()

    _say("starting the local cluster (PostgreSQL, Redis, Kafka, etcd, kube-apiserver)")
    devcluster.up()
    cluster = devcluster.read_env()
    kubectl = [str(cluster.kubectl), "--kubeconfig", cluster.kubeconfig]
    cjctl = [str(Path(sys.executable).parent / "cjctl")]
    os.environ["KUBECONFIG"] = cluster.kubeconfig

    _say("installing the CJBatch CRD")
    subprocess.run(
        [*kubectl, "apply", "--server-side", "-f", str(REPO_ROOT / "crds" / "cjbatch.yaml")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run([*kubectl, "create", "namespace", NAMESPACE], check=False, capture_output=True)
    _start_stack(cluster)

    if args.essays is None:
        name = "demo-community-service"
        _say(f"kubectl apply -f {DEMO_BATCH.relative_to(REPO_ROOT)}")
        subprocess.run([*kubectl, "apply", "-n", NAMESPACE, "-f", str(DEMO_BATCH)], check=True)
    else:
        name = args.name or "".join(c if c.isalnum() else "-" for c in args.essays.stem.lower())
        _say(f"cjctl submit {args.essays} --name {name}")
        submitted = subprocess.run(
            [
                *cjctl,
                "submit",
                str(args.essays),
                "--name",
                name,
                "--prompt-file",
                str(args.prompt_file),
                "-n",
                NAMESPACE,
            ],
            check=False,
        )
        if submitted.returncode != 0:
            return submitted.returncode

    _say(f"cjctl watch {name}")
    watched = subprocess.run([*cjctl, "watch", name, "-n", NAMESPACE], check=False)
    _say(f"cjctl results {name}")
    subprocess.run([*cjctl, "results", name, "-n", NAMESPACE], check=False)
    print(
        f"\nThe stack is still running. Try:\n"
        f'  eval "$(hack/devcluster env)"; export PATH="$CJ_TOOLS_BIN:$PWD/.venv/bin:$PATH"\n'
        f"  kubectl get cjb -n {NAMESPACE}\n"
        f"  cjctl results {name} -n {NAMESPACE} --format csv\n"
        f"Stop everything with: make down"
    )
    return watched.returncode


if __name__ == "__main__":
    sys.exit(main())
