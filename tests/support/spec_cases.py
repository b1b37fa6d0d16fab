"""Valid and invalid CJBatch specs shared by the pydantic tests and the API-server tests.

Each invalid case names what both validators must report: `message` for a CEL rule (the same
text from the API server and from pydantic), or `field` (the wire path, e.g.
``spec.judge.temperature``) for a schema constraint, whose wording differs between them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any


def base_spec() -> dict[str, Any]:
    """A minimal valid spec: two inline essays and a prompt."""
    return {
        "essays": [
            {"id": "e1", "text": "The first essay argues a point clearly."},
            {"id": "e2", "text": "The second essay wanders.", "metadata": {"true_score": 2.5}},
        ],
        "assignment": {"prompt": "Should schools have uniforms?"},
    }


def with_changes(**changes: Any) -> dict[str, Any]:
    """`base_spec()` with top-level keys replaced (None removes a key)."""
    spec = copy.deepcopy(base_spec())
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


def essays(n: int, **overrides: Any) -> list[dict[str, Any]]:
    """`n` distinct valid essays."""
    return [{"id": f"e{i}", "text": f"Essay number {i}.", **overrides} for i in range(n)]


@dataclass(frozen=True)
class Case:
    name: str
    spec: dict[str, Any]
    message: str | None = None
    field: str | None = None

    @property
    def valid(self) -> bool:
        return self.message is None and self.field is None


VALID: list[Case] = [
    Case("minimal", base_spec()),
    Case(
        "a panel of two judges",
        with_changes(judges=[{"provider": "offline"}, {"provider": "mock", "share": 2}]),
    ),
    Case(
        "everything set",
        with_changes(
            essays=essays(5, metadata={"class": "7B", "score": 3}),
            assignment={"prompt": "Describe a journey.", "rubric": "Content, structure, style."},
            judge={
                "provider": "anthropic",
                "model": "claude-x",
                "temperature": 0.2,
                "maxTokens": 512,
            },
            comparisons={"targetPerEssay": 12, "maxTotal": 40},
            stopping={
                "scoreStabilitySE": 0.2,
                "minResultsForStability": 20,
                "reliabilityTarget": 0.8,
            },
            limits={"maxCostUSD": 2.5, "timeout": "1h30m", "minSuccessRate": 0.9, "maxRetries": 0},
            suspend=True,
        ),
    ),
    Case(
        "essays from ConfigMaps",
        with_changes(
            essays=None,
            essaysFrom=[
                {"configMap": "essays-1"},
                {"configMap": "essays-2", "key": "part.jsonl", "format": "jsonl"},
            ],
        ),
    ),
    Case("500 inline essays", with_changes(essays=essays(500))),
    Case("timeout in minutes", with_changes(limits={"timeout": "90m"})),
]

INVALID: list[Case] = [
    Case(
        "one essay", with_changes(essays=essays(1)), message="spec.essays needs at least 2 essays"
    ),
    Case("no essays", with_changes(essays=[]), message="spec.essays needs at least 2 essays"),
    Case(
        "duplicate ids",
        with_changes(essays=[*essays(3), {"id": "e1", "text": "again"}]),
        message="essay ids in spec.essays must be unique",
    ),
    Case(
        "blank text",
        with_changes(essays=[*essays(2), {"id": "x", "text": "  \n\t "}]),
        message="essay text must not be empty or blank",
    ),
    Case(
        "blank id",
        with_changes(essays=[*essays(2), {"id": "   ", "text": "fine"}]),
        message="essay id must not be blank",
    ),
    Case(
        "empty text",
        with_changes(essays=[*essays(2), {"id": "x", "text": ""}]),
        field="spec.essays[2].text",
    ),
    Case(
        "no essay source",
        with_changes(essays=None),
        message="set exactly one of spec.essays and spec.essaysFrom",
    ),
    Case(
        "both essay sources",
        with_changes(essaysFrom=[{"configMap": "essays-1"}]),
        message="set exactly one of spec.essays and spec.essaysFrom",
    ),
    Case(
        "empty essaysFrom",
        with_changes(essays=None, essaysFrom=[]),
        message="spec.essaysFrom needs at least one ConfigMap reference",
    ),
    Case(
        "blank prompt",
        with_changes(assignment={"prompt": "   "}),
        message="spec.assignment.prompt must not be blank",
    ),
    Case(
        "timeout too short",
        with_changes(limits={"timeout": "30s"}),
        message="spec.limits.timeout must be between 1m and 168h",
    ),
    Case(
        "timeout too long",
        with_changes(limits={"timeout": "200h"}),
        message="spec.limits.timeout must be between 1m and 168h",
    ),
    Case("too many essays", with_changes(essays=essays(501)), field="spec.essays"),
    Case(
        "text too long",
        with_changes(essays=[*essays(1), {"id": "x", "text": "a" * 20_001}]),
        field="spec.essays[1].text",
    ),
    Case(
        "id too long",
        with_changes(essays=[*essays(1), {"id": "i" * 129, "text": "t"}]),
        field="spec.essays[1].id",
    ),
    Case("no assignment", with_changes(assignment=None), field="spec.assignment"),
    Case("unknown provider", with_changes(judge={"provider": "gpt"}), field="spec.judge.provider"),
    Case(
        "temperature too high",
        with_changes(judge={"temperature": 2.5}),
        field="spec.judge.temperature",
    ),
    Case(
        "a judge and a panel",
        with_changes(judge={"provider": "mock"}, judges=[{"provider": "offline"}] * 2),
        message="set spec.judge or spec.judges (a panel), not both",
    ),
    Case(
        "a panel of one",
        with_changes(judges=[{"provider": "offline"}]),
        field="spec.judges",
    ),
    Case(
        "a panel judge with a zero share",
        with_changes(judges=[{"provider": "offline", "share": 0}, {"provider": "mock"}]),
        field="spec.judges[0].share",
    ),
    Case(
        "zero target",
        with_changes(comparisons={"targetPerEssay": 0}),
        field="spec.comparisons.targetPerEssay",
    ),
    Case(
        "zero budget", with_changes(comparisons={"maxTotal": 0}), field="spec.comparisons.maxTotal"
    ),
    Case(
        "zero stability threshold",
        with_changes(stopping={"scoreStabilitySE": 0}),
        field="spec.stopping.scoreStabilitySE",
    ),
    Case(
        "reliability target of 1",
        with_changes(stopping={"reliabilityTarget": 1}),
        field="spec.stopping.reliabilityTarget",
    ),
    Case(
        "reliability target above 1",
        with_changes(stopping={"reliabilityTarget": 1.2}),
        field="spec.stopping.reliabilityTarget",
    ),
    Case(
        "negative cost limit",
        with_changes(limits={"maxCostUSD": -1}),
        field="spec.limits.maxCostUSD",
    ),
    Case(
        "malformed timeout",
        with_changes(limits={"timeout": "4 hours"}),
        field="spec.limits.timeout",
    ),
    Case(
        "success rate above 1",
        with_changes(limits={"minSuccessRate": 1.5}),
        field="spec.limits.minSuccessRate",
    ),
    Case(
        "too many retries", with_changes(limits={"maxRetries": 11}), field="spec.limits.maxRetries"
    ),
    Case(
        "bad ConfigMap name",
        with_changes(essays=None, essaysFrom=[{"configMap": "Not_A_Name"}]),
        field="spec.essaysFrom[0].configMap",
    ),
    Case("unknown field", with_changes(extra=1), field="spec.extra"),
]


def _essay_with(**fields: Any) -> dict[str, Any]:
    """`base_spec()` whose first essay has `fields` replaced."""
    spec = base_spec()
    spec["essays"][0].update(fields)
    return spec


HOSTILE: list[Case] = [
    # Wrong types: each named by its wire path.
    Case("essays not a list", with_changes(essays="e1,e2"), field="spec.essays"),
    Case("essay text a number", _essay_with(text=42), field="spec.essays[0].text"),
    Case("metadata not an object", _essay_with(metadata="x"), field="spec.essays[0].metadata"),
    # The one metadata key with a meaning is typed in the schema (the API server names
    # spec.essays[0].metadata.anchorGrade; the model's validator names the metadata).
    Case(
        "anchorGrade a letter",
        _essay_with(metadata={"anchorGrade": "B+"}),
        field="spec.essays[0].metadata",
    ),
    Case(
        "anchorGrade a boolean",
        _essay_with(metadata={"anchorGrade": True}),
        field="spec.essays[0].metadata",
    ),
    Case(
        "temperature a string",
        with_changes(judge={"temperature": "hot"}),
        field="spec.judge.temperature",
    ),
    Case(
        "fractional budget",
        with_changes(comparisons={"maxTotal": 10.5}),
        field="spec.comparisons.maxTotal",
    ),
    Case("suspend a string", with_changes(suspend="yes"), field="spec.suspend"),
    # Bounds the shared INVALID list does not try.
    Case(
        "65 metadata keys",
        _essay_with(metadata={f"k{i}": i for i in range(65)}),
        field="spec.essays[0].metadata",
    ),
    Case(
        "prompt too long",
        with_changes(assignment={"prompt": "p" * 10_001}),
        field="spec.assignment.prompt",
    ),
    Case(
        "rubric too long",
        with_changes(assignment={"prompt": "p", "rubric": "r" * 9_001}),
        field="spec.assignment.rubric",
    ),
    Case("zero maxTokens", with_changes(judge={"maxTokens": 0}), field="spec.judge.maxTokens"),
    Case(
        "maxTokens above 100000",
        with_changes(judge={"maxTokens": 100_001}),
        field="spec.judge.maxTokens",
    ),
    Case("model too long", with_changes(judge={"model": "m" * 201}), field="spec.judge.model"),
    Case(
        "provider in capitals",
        with_changes(judge={"provider": "Anthropic"}),
        field="spec.judge.provider",
    ),
    Case(
        "negative retries", with_changes(limits={"maxRetries": -1}), field="spec.limits.maxRetries"
    ),
    Case("empty timeout", with_changes(limits={"timeout": ""}), field="spec.limits.timeout"),
    Case(
        "path in ConfigMap key",
        with_changes(essays=None, essaysFrom=[{"configMap": "cm", "key": "../etc/passwd"}]),
        field="spec.essaysFrom[0].key",
    ),
    Case(
        "unknown ConfigMap format",
        with_changes(essays=None, essaysFrom=[{"configMap": "cm", "format": "xlsx"}]),
        field="spec.essaysFrom[0].format",
    ),
    Case(
        "201 ConfigMaps",
        with_changes(essays=None, essaysFrom=[{"configMap": f"cm-{i}"} for i in range(201)]),
        field="spec.essaysFrom",
    ),
    Case("unknown judge field", with_changes(judge={"apiKey": "sk-1"}), field="spec.judge.apiKey"),
    # Control characters: PostgreSQL cannot store a NUL (the batch could never be registered).
    Case("NUL in essay text", _essay_with(text="one\x00two"), field="spec.essays[0].text"),
    Case("escape in essay id", _essay_with(id="e\x1b1"), field="spec.essays[0].id"),
    Case(
        "NUL in prompt",
        with_changes(assignment={"prompt": "Write\x00."}),
        field="spec.assignment.prompt",
    ),
    Case(
        "bell in rubric",
        with_changes(assignment={"prompt": "p", "rubric": "\x07loud"}),
        field="spec.assignment.rubric",
    ),
    Case("NUL in model", with_changes(judge={"model": "gpt\x00"}), field="spec.judge.model"),
]
"""Hostile specs of the bad-input suite (tests/*/bad_input): wrong types, bounds and control
characters, each refused by the API server and by the model naming the field. Not in INVALID,
which the older tests run."""

OPERATOR_REFUSED: list[Case] = [
    Case(
        "NUL in a metadata value",
        _essay_with(metadata={"note": "a\x00b"}),
        message="metadata.note: control character '\\x00' at position 1",
    ),
    Case(
        "NUL in a metadata key",
        _essay_with(metadata={"a\x00": 1}),
        message="metadata key 'a\\x00': control character",
    ),
    Case(
        "escape deep in metadata",
        _essay_with(metadata={"a": [{"b": "\x1b[2J"}]}),
        message="metadata.a[0].b: control character '\\x1b'",
    ),
]
"""Specs the API server accepts (metadata is free-form, no schema can reach into it) but the
operator's model refuses with `message`: PostgreSQL's JSONB cannot store a NUL."""
