"""`cjctl`: submit essays as a CJBatch, watch it run, print its results.

    cjctl submit ESSAYS.csv|DIR --name N --prompt-file F --judge offline [--per-essay K]
    cjctl watch N
    cjctl results N --format table|csv|json
    cjctl list

Every command takes --namespace/-n (default: the kubeconfig context's namespace, else
`default`), --kubeconfig and --context. Errors are one line on stderr and exit code 1 (2 for
usage errors).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from kubernetes import client
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from cj_operator.cli import kube
from cj_operator.cli.essays_input import EssayInputError, read_essays
from cj_operator.cli.judge_arg import JUDGE_FORMS, parse_judge
from cj_operator.cli.packing import pack_essays
from cj_operator.cli.render import (
    TERMINAL_PHASES,
    batches_table,
    eta_seconds,
    format_duration,
    progress_fraction,
    results_table,
    results_title,
)
from cj_operator.results import results_config_map_name
from cj_operator.spec import (
    API_GROUP,
    API_VERSION,
    KIND,
    PLURAL,
    Assignment,
    CJBatchSpec,
    Comparisons,
    EssaySource,
    Limits,
)

app = typer.Typer(
    help="Comparative judgement of essays on Kubernetes: submit, watch, results, list.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

Namespace = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Namespace (default: the context's).")
]
Kubeconfig = Annotated[str | None, typer.Option(help="Path of the kubeconfig file.")]
Context = Annotated[str | None, typer.Option(help="kubeconfig context to use.")]


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _namespace(namespace: str | None, kubeconfig: str | None, context: str | None) -> str:
    return namespace or kube.context_namespace(kubeconfig, context)


def _connect(kubeconfig: str | None, context: str | None) -> client.ApiClient:
    try:
        return kube.connect(kubeconfig, context)
    except kube.KubeError as e:
        raise _fail(str(e)) from None


@app.command()
def submit(
    essays: Annotated[
        Path, typer.Argument(help="A CSV file (id,text,...) or a folder of .txt/.md files.")
    ],
    name: Annotated[str, typer.Option(help="Name of the CJBatch (a DNS label).")],
    prompt_file: Annotated[Path, typer.Option(help="File with the assignment prompt.")],
    judge: Annotated[str, typer.Option(help=f"The judge: {JUDGE_FORMS}.")] = "offline",
    rubric_file: Annotated[Path | None, typer.Option(help="File with the rubric.")] = None,
    per_essay: Annotated[int, typer.Option(min=1, help="Comparisons per essay.")] = 10,
    max_total: Annotated[int | None, typer.Option(min=1, help="Most comparisons in all.")] = None,
    max_cost: Annotated[float | None, typer.Option(min=0.0, help="Cost limit in USD.")] = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Create ConfigMaps holding the essays and a CJBatch that ranks them."""
    try:
        essay_list = read_essays(essays)
        prompt = _read_file(prompt_file, "prompt")
        rubric = _read_file(rubric_file, "rubric") if rubric_file else None
        judge_spec = parse_judge(judge)
        packs = pack_essays(name, essay_list)
        spec = CJBatchSpec(
            essays_from=[EssaySource(config_map=cm, key=key) for cm, key, _ in packs],
            assignment=Assignment(prompt=prompt, rubric=rubric),
            judge=judge_spec,
            comparisons=Comparisons(target_per_essay=per_essay, max_total=max_total),
            limits=Limits(max_cost_usd=max_cost),
        )
    except (EssayInputError, ValueError) as e:
        message = _validation_message(e) if isinstance(e, ValidationError) else str(e)
        raise _fail(message) from None

    api = _connect(kubeconfig, context)
    ns = _namespace(namespace, kubeconfig, context)
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    try:
        for cm_name, key, data in packs:
            _create_config_map(api, core, ns, name, cm_name, {key: data})
        batch = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": KIND,
            "metadata": {"name": name, "namespace": ns},
            "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        created = kube.call(
            api,
            f"create cjbatch {name}",
            lambda: custom.create_namespaced_custom_object(
                API_GROUP, API_VERSION, ns, PLURAL, batch
            ),
        )
        owner = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": KIND,
            "name": name,
            "uid": cast(dict[str, Any], created)["metadata"]["uid"],
        }
        for cm_name, _, _ in packs:
            _set_owner(api, core, ns, cm_name, owner)
    except kube.KubeError as e:
        raise _fail(str(e)) from None
    out.print(
        f"cjbatch/{name} created in namespace {ns}: {len(essay_list)} essays in "
        f"{len(packs)} ConfigMap(s), judge {judge}. Follow it with: cjctl watch {name} -n {ns}"
    )


def _create_config_map(
    api: client.ApiClient,
    core: client.CoreV1Api,
    namespace: str,
    batch: str,
    name: str,
    data: dict[str, str],
) -> None:
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels={"cj.huleedu.io/batch": batch}), data=data
    )
    kube.call(
        api, f"create configmap {name}", lambda: core.create_namespaced_config_map(namespace, body)
    )


def _set_owner(
    api: client.ApiClient,
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    owner: dict[str, str],
) -> None:
    """Make the CJBatch own its essay ConfigMaps, so deleting it removes them."""
    patch = {"metadata": {"ownerReferences": [owner]}}
    kube.call(
        api,
        f"patch configmap {name}",
        lambda: core.patch_namespaced_config_map(name, namespace, patch),
    )


def _read_file(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise EssayInputError(f"{path}: cannot read the {what}: {e}") from None
    if not text.strip():
        raise EssayInputError(f"{path}: the {what} is empty")
    return text.strip()


def _validation_message(e: ValidationError) -> str:
    first = e.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


@app.command()
def watch(
    name: Annotated[str, typer.Argument(help="The CJBatch.")],
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between polls.")] = 1.0,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Show a live progress bar until the batch is Completed, Failed or Cancelled.

    Exit code 0 when Completed, 1 when Failed or Cancelled (or on timeout).
    """
    api = _connect(kubeconfig, context)
    ns = _namespace(namespace, kubeconfig, context)
    started = datetime.now(UTC)
    deadline = None if timeout is None else time.monotonic() + timeout
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[detail]}"),
    )
    try:
        with Progress(*columns, console=out, transient=False) as progress:
            task = progress.add_task(name, total=1.0, detail="")
            while True:
                status = kube.get_batch(api, ns, name).get("status", {})
                fraction = progress_fraction(status)
                phase = status.get("phase", "Pending")
                eta = eta_seconds(started, fraction, datetime.now(UTC))
                detail = (
                    f"{phase}  completed {status.get('completed', 0)}  "
                    f"failed {status.get('failed', 0)}  pending {status.get('pending', 0)}  "
                    f"round {status.get('round', 0)}  cost ${status.get('costUSD', 0.0):.4f}  "
                    f"ETA {format_duration(None if phase in TERMINAL_PHASES else eta)}"
                )
                progress.update(task, completed=fraction, detail=detail)
                if phase in TERMINAL_PHASES:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise _fail(f"cjbatch {name} still {phase} after {timeout} s")
                time.sleep(interval)
    except kube.KubeError as e:
        raise _fail(str(e)) from None
    succeeded: dict[str, Any] = next(
        (c for c in status.get("conditions", []) if c.get("type") == "Succeeded"), {}
    )
    out.print(f"{name}: {phase}. {succeeded.get('message', '')}".rstrip())
    if phase != "Completed":
        raise typer.Exit(1)


@app.command()
def results(
    name: Annotated[str, typer.Argument(help="The CJBatch.")],
    output: Annotated[
        OutputFormat, typer.Option("--format", "-o", help="Output format.")
    ] = OutputFormat.table,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Print the final ranking from the `<name>-results` ConfigMap."""
    api = _connect(kubeconfig, context)
    ns = _namespace(namespace, kubeconfig, context)
    core = client.CoreV1Api(api)
    cm_name = results_config_map_name(name)
    try:
        batch = kube.get_batch(api, ns, name)
        status = batch.get("status", {})
        cm = kube.call(
            api,
            f"get configmap {cm_name}",
            lambda: core.read_namespaced_config_map(cm_name, ns),
            not_found=f"no results yet: cjbatch {name} is {status.get('phase', 'Pending')} "
            f"({status.get('progress', '0%')}); try `cjctl watch {name}`",
        )
    except kube.KubeError as e:
        raise _fail(str(e)) from None
    data = cm.data or {}
    if output is OutputFormat.csv:
        out.print(
            data.get("results.csv", ""), end="", markup=False, highlight=False, soft_wrap=True
        )
    elif output is OutputFormat.json:
        out.print(data.get("results.json", "[]"), markup=False, highlight=False, soft_wrap=True)
    else:
        out.print(results_table(data.get("results.json", "[]"), results_title(name, status)))


@app.command("list")
def list_(
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")
    ] = False,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """List CJBatches with phase, progress and reliability."""
    api = _connect(kubeconfig, context)
    ns = None if all_namespaces else _namespace(namespace, kubeconfig, context)
    try:
        items = kube.list_batches(api, ns)
    except kube.KubeError as e:
        raise _fail(str(e)) from None
    if not items:
        out.print(f"no CJBatches{'' if ns is None else f' in namespace {ns}'}")
        return
    out.print(batches_table(items))


if __name__ == "__main__":
    app()
