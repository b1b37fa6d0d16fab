"""The `cjctl` Typer app and what its commands share: options, consoles, errors, connection."""

from __future__ import annotations

from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer
from kubernetes import client
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from cj_operator.cli import kube
from cj_operator.spec import API_GROUP, API_VERSION

app = typer.Typer(
    help="Comparative judgement of essays on Kubernetes: submit, watch, results, comparisons, "
    "list, suspend, resume, cancel.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

Namespace = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Namespace (default: the context's).")
]
Kubeconfig = Annotated[str | None, typer.Option(help="Path of the kubeconfig file.")]
Context = Annotated[str | None, typer.Option(help="kubeconfig context to use.")]
BatchName = Annotated[str, typer.Argument(help="The CJBatch.")]


class OutputFormat(StrEnum):
    """`results` and `comparisons` output."""

    table = "table"
    csv = "csv"
    json = "json"


def cjctl_version() -> str:
    """`cjctl X.Y.Z (cj.huleedu.io/v1alpha1)`: the installed cj-operator package's version."""
    try:
        number = version("cj-operator")
    except PackageNotFoundError:  # running from a source tree that is not installed
        number = "unknown"
    return f"cjctl {number} ({API_GROUP}/{API_VERSION})"


def fail(message: str) -> typer.Exit:
    """Print `error: message` on stderr; the Exit (code 1) to raise."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def emit(text: str) -> None:
    """Write machine-readable output (CSV, JSON, YAML) to stdout as it is, ending in a newline
    (no console markup or wrapping)."""
    typer.echo(text, nl=not text.endswith("\n"))


def print_table(table: Table) -> None:
    """Print a table: fitted to the terminal, or, into a pipe or file, at its full width
    (one line per row, nothing cut), so `grep` and `less -S` see whole rows."""
    if out.is_terminal:
        out.print(table)
        return
    natural = Measurement.get(out, out.options.update_width(1_000_000), table).maximum
    Console(width=max(out.width, natural)).print(table)


def note(message: str) -> None:
    """Print `note: message` on stderr (stdout stays the command's output)."""
    err.print(f"note: {message}", highlight=False, soft_wrap=True, markup=False)


def namespace_of(namespace: str | None, kubeconfig: str | None, context: str | None) -> str:
    """`--namespace`, else the kubeconfig context's namespace, else `default`."""
    return namespace or kube.context_namespace(kubeconfig, context)


def connect(kubeconfig: str | None, context: str | None) -> client.ApiClient:
    """An API client; raises the Exit of `fail` when no configuration is usable."""
    try:
        return kube.connect(kubeconfig, context)
    except kube.KubeError as e:
        raise fail(str(e)) from None


def validation_message(e: ValidationError, flags: dict[str, str] | None = None) -> str:
    """The first error as `where: message`; `where` is the command-line flag when `flags` maps
    the error's location (dotted wire names, e.g. `limits.timeout`) to one."""
    first = e.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    where = (flags or {}).get(where, where)
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
