"""cjctl without a cluster: submit's flags and dry-run output, list and comparisons rendering,
the ETA's start, --version and shell completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from cj_operator.cli.comparisons_cmd import missing_message
from cj_operator.cli.judge_arg import parse_judge
from cj_operator.cli.main import app
from cj_operator.cli.manifests import as_yaml, batch_object, submit_spec
from cj_operator.cli.render import (
    batch_started,
    batches_table,
    comparisons_table,
    comparisons_title,
    eta_seconds,
    without_managed_fields,
)
from cj_operator.essays_source import parse_jsonl
from cj_operator.evidence import ComparisonRow
from cj_operator.spec import CJBatchSpec

runner = CliRunner()
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _text(table: Table, width: int = 250) -> str:
    console = Console(width=width, record=True)
    console.print(table)
    return console.export_text()


def _unreachable_kubeconfig(tmp_path: Path) -> str:
    """A kubeconfig whose server nobody answers: a command that connects would fail."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
        "    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\n"
        "users:\n- name: u\n  user: {token: x}\ncontexts:\n- name: c\n"
        "  context: {cluster: c, user: u, namespace: from-context}\ncurrent-context: c\n",
        encoding="utf-8",
    )
    return str(path)


def _inputs(tmp_path: Path) -> list[str]:
    essays = tmp_path / "essays.csv"
    essays.write_text('id,text,grade\n0e12,"First\nessay",3\nb,Second essay,4\n', "utf-8")
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Describe your town.\n", "utf-8")
    return [str(essays), "--name", "town", "--prompt-file", str(prompt)]


# --- submit's flags ---------------------------------------------------------------------------


def test_submit_flags_set_their_spec_fields() -> None:
    spec = submit_spec(
        sources=[("b-essays-000", "essays-000.jsonl")],
        prompt="P",
        rubric=None,
        judge=parse_judge("anthropic:claude-sonnet-4-5"),
        temperature=0.3,
        per_essay=8,
        reliability_target=0.85,
        timeout="90m",
    )
    assert spec.judge.model_dump(exclude_none=True) == {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "temperature": 0.3,
    }
    assert spec.stopping.reliability_target == 0.85
    assert spec.limits.timeout == "90m"
    assert spec.comparisons.target_per_essay == 8
    assert spec.limits.max_cost_usd is None and spec.comparisons.max_total is None


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"timeout": "5s"}, "--timeout: spec.limits.timeout must be between 1m and 168h"),
        ({"timeout": "2"}, "--timeout: not a duration like 4h, 90m or 1h30m: '2'"),
        ({"reliability_target": 1.0}, "--reliability-target: Input should be less than 1"),
        ({"temperature": 2.5}, "--temperature: Input should be less than or equal to 2"),
    ],
)
def test_a_refused_flag_is_named(flags: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=r"^--") as caught:
        submit_spec(
            sources=[("cm", "k")], prompt="P", rubric=None, judge=parse_judge("mock"), **flags
        )
    assert str(caught.value) == message


def test_submit_refuses_output_without_dry_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["submit", *_inputs(tmp_path), "-o", "yaml"])
    assert result.exit_code == 2
    assert "applies to --dry-run only" in result.output


# --- dry run ----------------------------------------------------------------------------------


def test_dry_run_prints_what_submit_would_create_without_connecting(tmp_path: Path) -> None:
    kubeconfig = _unreachable_kubeconfig(tmp_path)
    args = ["submit", *_inputs(tmp_path), "--timeout", "2h", "--dry-run"]
    args += ["--kubeconfig", kubeconfig]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    config_map, batch = yaml.safe_load_all(result.stdout)
    assert config_map["kind"] == "ConfigMap"
    assert config_map["metadata"] == {
        "name": "town-essays-000",
        "namespace": "from-context",
        "labels": {"cj.huleedu.io/batch": "town"},
    }
    essays = parse_jsonl(config_map["data"]["essays-000.jsonl"], "k")
    assert [(e.id, e.text, e.metadata) for e in essays] == [
        ("0e12", "First\nessay", {"grade": 3}),
        ("b", "Second essay", {"grade": 4}),
    ]
    assert batch["kind"] == "CJBatch" and batch["metadata"]["name"] == "town"
    spec = CJBatchSpec.model_validate(batch["spec"])
    assert spec.limits.timeout == "2h"
    assert spec.essays_from is not None
    assert [(s.config_map, s.key) for s in spec.essays_from] == [
        ("town-essays-000", "essays-000.jsonl")
    ]

    as_json = runner.invoke(app, [*args, "-o", "json", "-n", "other"])
    assert as_json.exit_code == 0, as_json.output
    listed = json.loads(as_json.stdout)
    assert (listed["kind"], [i["kind"] for i in listed["items"]]) == (
        "List",
        ["ConfigMap", "CJBatch"],
    )
    assert {i["metadata"]["namespace"] for i in listed["items"]} == {"other"}


def test_yaml_quotes_what_could_read_as_a_number_and_keeps_text_as_blocks() -> None:
    obj = {"a": "0e12", "b": "1.5", "c": "two\nlines\n", "d": "plain", "e": "2h"}
    text = as_yaml([obj])
    assert '"0e12"' in text and '"1.5"' in text and "c: |" in text
    assert "d: plain" in text
    assert yaml.safe_load(text) == obj


# --- list -------------------------------------------------------------------------------------


def _batch(name: str, **status: Any) -> dict[str, Any]:
    spec = submit_spec(sources=[("cm", "k")], prompt="P", rubric=None, judge=parse_judge("mock"))
    obj = batch_object(name, "ns", spec)
    obj["metadata"] |= {
        "creationTimestamp": "2026-03-01T11:00:00Z",
        "managedFields": [{"manager": "cjctl"}],
    }
    obj["status"] = status
    return obj


def test_list_wide_adds_round_budget_ssr_cost_judge_and_reason() -> None:
    done = _batch(
        "done",
        phase="Completed",
        essays=6,
        progress="100%",
        completed=15,
        round=4,
        budget=15,
        reliability=0.91,
        ssr=0.93,
        costUSD=0.0421,
        conditions=[{"type": "Succeeded", "status": "True", "reason": "ScoresStable"}],
    )
    running = _batch("running", phase="WaitingCallbacks", round=1, budget=30)
    narrow = _text(batches_table([done, running], now=NOW))
    assert "ROUND" not in narrow and "done" in narrow and "1h00m" in narrow
    wide = _text(batches_table([done, running], now=NOW, wide=True))
    header = wide.splitlines()[1]
    for column in ("ROUND", "BUDGET", "SSR", "COST", "JUDGE", "REASON"):
        assert column in header
    done_line = next(line for line in wide.splitlines() if " done " in line)
    for cell in ("0.91", "0.93", "$0.0421", "mock", "ScoresStable"):
        assert cell in done_line
    assert "ScoresStable" not in next(line for line in wide.splitlines() if "running" in line)


def test_list_wide_names_every_panel_judge() -> None:
    panel = _batch("panel", phase="Pending")
    panel["spec"].pop("judge")
    panel["spec"]["judges"] = [
        {"provider": "offline", "share": 1.0},
        {"provider": "anthropic", "model": "m-1", "share": 1.0},
    ]
    text = _text(batches_table([panel], now=NOW, wide=True))
    line = next(row for row in text.splitlines() if "panel" in row)
    assert "offline+anthropic/m-1" in line


def test_list_objects_drop_managed_fields_only() -> None:
    obj = _batch("b", phase="Pending")
    clean = without_managed_fields(obj)
    assert "managedFields" not in clean["metadata"]
    assert clean["metadata"]["name"] == "b" and clean["spec"] == obj["spec"]
    assert "managedFields" in obj["metadata"]


# --- watch's ETA ------------------------------------------------------------------------------


def test_eta_counts_from_the_batch_start_not_from_the_watch() -> None:
    started = {"metadata": {"creationTimestamp": "2026-03-01T11:00:00Z"}}
    assert batch_started(started) == NOW - timedelta(hours=1)
    started["status"] = {"startedAt": "2026-03-01T11:30:00+00:00"}
    assert batch_started(started) == NOW - timedelta(minutes=30)
    assert batch_started({"status": {"startedAt": "not a time"}}) is None
    # Half done after the 30 minutes since startedAt: 30 minutes left, whenever watch began.
    begun = batch_started(started)
    assert begun is not None
    assert eta_seconds(begun, 0.5, NOW) == pytest.approx(1800.0)


# --- comparisons ------------------------------------------------------------------------------


def test_comparisons_table_shows_slots_winner_judge_and_failures() -> None:
    rows = [
        ComparisonRow(
            round=1,
            attempt=1,
            essay_a_id="e1",
            essay_b_id="e2",
            winner="essay_b",
            confidence=4.0,
            judge="mock/mock-1",
            provider="mock",
            model="mock-1",
            cost_usd=0.002,
            status="SUCCEEDED",
            justification="B is clearer.",
            correlation_id="c1",
        ),
        ComparisonRow(
            round=2,
            attempt=1,
            essay_a_id="e2",
            essay_b_id="e3",
            status="FAILED",
            error_code="PROVIDER_TIMEOUT",
            correlation_id="c2",
        ),
    ]
    title = comparisons_title("b", rows)
    assert title == "b: 2 comparison requests, 1 with a winner, 1 failed, cost $0.0020"
    text = _text(comparisons_table(rows, title))
    first = next(line for line in text.splitlines() if "B is clearer." in line)
    assert [cell for cell in first.split() if cell != "│"][:5] == ["1", "1", "e1", "e2", "e2"]
    assert "mock/mock-1" in first
    assert "PROVIDER_TIMEOUT" in next(line for line in text.splitlines() if " e3 " in line)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {
                "phase": "Completed",
                "conditions": [
                    {
                        "type": "ComparisonsWritten",
                        "status": "False",
                        "reason": "ComparisonsTooLarge",
                        "message": "The 4000 comparisons are 2,000,000 bytes as CSV",
                    }
                ],
            },
            "no comparisons ConfigMap (ComparisonsTooLarge): The 4000 comparisons are 2,000,000",
        ),
        (
            {"phase": "WaitingCallbacks", "progress": "40%"},
            "cjbatch b is WaitingCallbacks (40%); its comparisons ConfigMap is written when it "
            "finishes: set DATABASE_URL",
        ),
        ({"phase": "Completed"}, "configmap/b-comparisons not found; set DATABASE_URL"),
    ],
)
def test_missing_comparisons_say_why_and_what_to_do(status: dict[str, Any], expected: str) -> None:
    assert missing_message("b", status).startswith(expected)


# --- version and completion -------------------------------------------------------------------


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == "cjctl 0.1.0 (cj.huleedu.io/v1alpha1)"


def _complete(words: str) -> list[str]:
    cjctl = Path(sys.executable).parent / "cjctl"
    env = {
        **os.environ,
        "_CJCTL_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    done = subprocess.run([str(cjctl)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_shell_completion_offers_commands_and_choices() -> None:
    assert _complete("cjctl su") == ["submit", "suspend"]
    assert _complete("cjctl list -o ") == ["table", "wide", "json", "yaml"]
    cjctl = Path(sys.executable).parent / "cjctl"
    shown = subprocess.run(
        [str(cjctl), "--show-completion", "bash"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "_CJCTL_COMPLETE=complete_bash" in shown.stdout
