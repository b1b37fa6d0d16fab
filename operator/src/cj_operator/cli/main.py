"""`cjctl`: submit essays as a CJBatch, watch it run, print its results and comparisons.

    cjctl submit ESSAYS.csv|DIR --name N --prompt-file F --judge offline [--per-essay K]
                 [--dry-run [-o yaml|json]]
    cjctl watch N
    cjctl results N --format table|csv|json
    cjctl comparisons N -o table|csv|json [--database-url URL]
    cjctl report N [-o report.html] [--database-url URL]
    cjctl list [-A] [-o table|wide|json|yaml]
    cjctl suspend|resume|cancel N
    cjctl --version | --install-completion | --show-completion

Every command takes --namespace/-n (default: the kubeconfig context's namespace, else
`default`), --kubeconfig and --context. Errors are one line on stderr and exit code 1 (2 for
usage errors).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, cast

import typer
import yaml
from kubernetes import client
from rich.progress import BarColumn, Progress, TextColumn

from cj_operator.cli import comparisons_cmd, control, kube, manifests
from cj_operator.cli.app import (
    BatchName,
    Context,
    Kubeconfig,
    Namespace,
    OutputFormat,
    app,
    cjctl_version,
    connect,
    emit,
    fail,
    namespace_of,
    note,
    out,
    print_table,
)
from cj_operator.cli.essays_input import EssayInputError, read_essays
from cj_operator.cli.judge_arg import JUDGE_FORMS, parse_judge
from cj_operator.cli.packing import pack_essays
from cj_operator.cli.render import (
    TERMINAL_PHASES,
    batch_started,
    batches_table,
    eta_seconds,
    format_duration,
    progress_fraction,
    results_table,
    results_title,
    without_managed_fields,
)
from cj_operator.spec import API_GROUP, API_VERSION, KIND, PLURAL


def _print_version(value: bool) -> None:
    if value:
        out.print(cjctl_version(), highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print cjctl's version and the CJBatch API version, then exit.",
        ),
    ] = False,
) -> None:
    """Comparative judgement of essays on Kubernetes."""


class DryRunFormat(StrEnum):
    yaml = "yaml"
    json = "json"


@app.command()
def submit(
    essays: Annotated[
        Path, typer.Argument(help="A CSV file (id,text,...) or a folder of .txt/.md files.")
    ],
    name: Annotated[str, typer.Option(help="Name of the CJBatch (a DNS label).")],
    prompt_file: Annotated[Path, typer.Option(help="File with the assignment prompt.")],
    judge: Annotated[str, typer.Option(help=f"The judge: {JUDGE_FORMS}.")] = "offline",
    temperature: Annotated[
        float | None, typer.Option(help="The judge's sampling temperature, 0-2.")
    ] = None,
    rubric_file: Annotated[Path | None, typer.Option(help="File with the rubric.")] = None,
    per_essay: Annotated[int, typer.Option(min=1, help="Comparisons per essay.")] = 10,
    max_total: Annotated[int | None, typer.Option(min=1, help="Most comparisons in all.")] = None,
    max_cost: Annotated[float | None, typer.Option(min=0.0, help="Cost limit in USD.")] = None,
    reliability_target: Annotated[
        float | None,
        typer.Option(help="Stop once the reliability reaches this (0-1, e.g. 0.8)."),
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option(help="Score (or fail) the batch this long after creation: 1m-168h, e.g. 2h."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the CJBatch and essay ConfigMaps instead of creating them."
        ),
    ] = False,
    output: Annotated[
        DryRunFormat | None,
        typer.Option("--output", "-o", help="With --dry-run: yaml (default) or json."),
    ] = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Create ConfigMaps holding the essays and a CJBatch that ranks them."""
    if output is not None and not dry_run:
        raise typer.BadParameter("-o/--output applies to --dry-run only", param_hint="'-o'")
    try:
        essay_list = read_essays(essays)
        prompt = _read_file(prompt_file, "prompt")
        rubric = _read_file(rubric_file, "rubric") if rubric_file else None
        packs = pack_essays(name, essay_list)
        spec = manifests.submit_spec(
            sources=[(cm, key) for cm, key, _ in packs],
            prompt=prompt,
            rubric=rubric,
            judge=parse_judge(judge),
            temperature=temperature,
            per_essay=per_essay,
            max_total=max_total,
            max_cost=max_cost,
            reliability_target=reliability_target,
            timeout=timeout,
        )
    except (EssayInputError, ValueError) as e:
        raise fail(str(e)) from None

    ns = namespace_of(namespace, kubeconfig, context)
    config_maps = [
        manifests.config_map_object(name, cm_name, ns, {key: data}) for cm_name, key, data in packs
    ]
    batch = manifests.batch_object(name, ns, spec)
    if dry_run:
        objects = [*config_maps, batch]
        as_text = manifests.as_json if output is DryRunFormat.json else manifests.as_yaml
        emit(as_text(objects))
        return

    api = connect(kubeconfig, context)
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    try:
        for body in config_maps:
            _create_config_map(api, core, ns, body)
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
        raise fail(str(e)) from None
    out.print(
        f"cjbatch/{name} created in namespace {ns}: {len(essay_list)} essays in "
        f"{len(packs)} ConfigMap(s), judge {judge}. Follow it with: cjctl watch {name} -n {ns}"
    )


def _create_config_map(
    api: client.ApiClient, core: client.CoreV1Api, namespace: str, body: dict[str, Any]
) -> None:
    meta = body["metadata"]
    config_map = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=meta["name"], labels=meta["labels"]), data=body["data"]
    )
    kube.call(
        api,
        f"create configmap {meta['name']}",
        lambda: core.create_namespaced_config_map(namespace, config_map),
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


@app.command()
def watch(
    name: BatchName,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between polls.")] = 1.0,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Show a live progress bar until the batch is Completed, Failed or Cancelled.

    The ETA assumes the batch goes on at its average rate since it started (status.startedAt,
    else its creation). Exit code 0 when Completed, 1 when Failed or Cancelled (or on timeout).
    """
    api = connect(kubeconfig, context)
    ns = namespace_of(namespace, kubeconfig, context)
    watch_started = datetime.now(UTC)
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
                obj = kube.get_batch(api, ns, name)
                status = obj.get("status", {})
                fraction = progress_fraction(status)
                phase = status.get("phase", "Pending")
                started = batch_started(obj) or watch_started
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
                    raise fail(f"cjbatch {name} still {phase} after {timeout} s")
                time.sleep(interval)
    except kube.KubeError as e:
        raise fail(str(e)) from None
    succeeded: dict[str, Any] = next(
        (c for c in status.get("conditions", []) if c.get("type") == "Succeeded"), {}
    )
    out.print(f"{name}: {phase}. {succeeded.get('message', '')}".rstrip())
    if phase != "Completed":
        raise typer.Exit(1)


@app.command()
def results(
    name: BatchName,
    output: Annotated[
        OutputFormat, typer.Option("--format", "-o", help="Output format.")
    ] = OutputFormat.table,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Print the final ranking from the `<name>-results` ConfigMap."""
    # Imported here: cj_operator.results pulls in the scoring modules (scipy), which the
    # other commands and shell completion do without.
    from cj_operator.results import results_config_map_name

    api = connect(kubeconfig, context)
    ns = namespace_of(namespace, kubeconfig, context)
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
        raise fail(str(e)) from None
    data = cm.data or {}
    if output is OutputFormat.csv:
        emit(data.get("results.csv", ""))
    elif output is OutputFormat.json:
        emit(data.get("results.json", "[]"))
    else:
        print_table(results_table(data.get("results.json", "[]"), results_title(name, status)))


app.command()(comparisons_cmd.comparisons)


@app.command()
def report(
    name: BatchName,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The HTML file to write.", dir_okay=False)
    ] = Path("report.html"),
    database_url: comparisons_cmd.DatabaseUrl = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Write one self-contained HTML report of a finished batch: the ranking with each
    essay's 95% interval as a plot, projected grades, reliability, order effect, misfitting
    essays and judges, and each essay's comparisons with the judges' justifications."""
    from cj_operator.cli.report import render_report
    from cj_operator.results import results_config_map_name

    api = connect(kubeconfig, context)
    ns = namespace_of(namespace, kubeconfig, context)
    cm_name = results_config_map_name(name)
    try:
        batch = kube.get_batch(api, ns, name)
        status = batch.get("status", {})
        cm = kube.find_config_map(api, ns, cm_name)
    except kube.KubeError as e:
        raise fail(str(e)) from None
    if cm is None:
        raise fail(
            f"no results yet: cjbatch {name} is {status.get('phase', 'Pending')} "
            f"({status.get('progress', '0%')}); try `cjctl watch {name}`"
        )
    data = cm.data or {}
    try:
        _, rows = comparisons_cmd.load_comparisons(api, ns, name, database_url)
        comparisons = [r.model_dump(mode="json") for r in rows]
    except typer.Exit:
        note("the report is written without the comparisons (see the error above)")
        comparisons = []
    page = render_report(
        name,
        status,
        json.loads(data.get("results.json", "[]")),
        json.loads(data.get("summary.json", "{}")),
        comparisons,
    )
    output.write_text(page, encoding="utf-8")
    note(f"wrote {output} ({len(page.encode()):,} bytes, {len(comparisons)} comparisons)")


class ListFormat(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"


@app.command("list")
def list_(
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")
    ] = False,
    output: Annotated[
        ListFormat,
        typer.Option(
            "--output", "-o", help="table, wide (more columns), or the objects as json/yaml."
        ),
    ] = ListFormat.table,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """List CJBatches with phase, progress and reliability."""
    api = connect(kubeconfig, context)
    ns = None if all_namespaces else namespace_of(namespace, kubeconfig, context)
    try:
        items = kube.list_batches(api, ns)
    except kube.KubeError as e:
        raise fail(str(e)) from None
    if output in (ListFormat.json, ListFormat.yaml):
        listed = manifests.as_list([without_managed_fields(i) for i in items])
        text = (
            json.dumps(listed, indent=2, ensure_ascii=False)
            if output is ListFormat.json
            else yaml.safe_dump(listed, sort_keys=False, allow_unicode=True)
        )
        emit(text)
        return
    if not items:
        out.print(f"no CJBatches{'' if ns is None else f' in namespace {ns}'}")
        return
    print_table(batches_table(items, wide=output is ListFormat.wide))


app.command()(control.suspend)
app.command()(control.resume)
app.command()(control.cancel)

__all__ = ["app"]

if __name__ == "__main__":
    app()
