"""The CJBatch spec as a pydantic model: the single source of the CRD's spec schema.

`crds/cjbatch.yaml` is generated from these models (``python -m cj_operator.crd``; a unit test
fails when the file differs from what the code generates). Schema constraints (types, lengths,
bounds, enums, defaults) reach the CRD through the JSON schema; each rule the JSON schema cannot
express is a `CelRule`, carried to the CRD as ``x-kubernetes-validations`` and checked here by a
Python validator raising the same message. Tests run the same valid and invalid examples through
this model and through the real API server.

Field names on the wire are camelCase (``essaysFrom``, ``maxCostUSD``); Python attributes are
snake_case. The lead's ``cjctl`` builds specs with these models.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from cj_operator.scoring.grades import ANCHOR_GRADE_KEY
from cj_operator.scoring.stopping import DEFAULT_STABILITY_THRESHOLD_SE
from common_core import LLMProviderType
from common_core.bounds import reject_control_characters

API_GROUP = "cj.huleedu.io"
API_VERSION = "v1alpha1"
KIND = "CJBatch"
PLURAL = "cjbatches"

ESSAY_ID_MAX_CHARS = 128
"""Longest essay id (characters)."""
INLINE_ESSAY_MAX_CHARS = 20_000
"""Longest inline essay text (characters): keeps the API server's CEL cost estimate in budget
with INLINE_ESSAYS_MAX essays. Essays from ConfigMaps may be up to SOURCED_ESSAY_MAX_CHARS."""
INLINE_ESSAYS_MAX = 500
"""Most essays inline in `spec.essays`; larger batches use `spec.essaysFrom`."""
SOURCED_ESSAY_MAX_CHARS = 50_000
"""Longest essay text from a ConfigMap (the provider API's default CJ_API_MAX_ESSAY_CHARS)."""
SOURCED_ESSAYS_MAX = 2_000
"""Most essays one CJBatch may load from its ConfigMaps (the Bradley-Terry fit is dense:
O(n^3) time, O(n^2) memory per round)."""
ESSAY_SOURCES_MAX = 200
"""Most ConfigMap references in `spec.essaysFrom` (1 MiB each)."""
PROMPT_MAX_CHARS = 10_000
RUBRIC_MAX_CHARS = 9_000
"""Prompt and rubric together stay under the provider API's CJ_API_MAX_PROMPT_CHARS (20,000)."""
METADATA_MAX_PROPERTIES = 64
"""Most keys in one essay's metadata."""
DURATION_PATTERN = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
"""A Go-style duration in whole hours, minutes and seconds: `4h`, `90m`, `1h30m`, `45s`."""
TIMEOUT_MIN_SECONDS = 60
TIMEOUT_MAX_SECONDS = 7 * 24 * 3600
NO_CONTROL_CHARACTERS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
"""JSON-schema pattern of text without C0 control characters or DEL (tab, line feed and
carriage return allowed), the same set `common_core.bounds` refuses: PostgreSQL cannot store
a NUL in text or JSONB, so a spec holding one would fail every attempt to register the batch.
A schema pattern rather than a CEL rule, so it costs nothing of the CEL budget."""


@dataclass(frozen=True)
class CelRule:
    """One CEL validation rule of the CRD and the message both the API server and pydantic give.

    `rule` is evaluated by the API server with `self` bound to the annotated field; the
    Python validator next to each use checks the same property and raises `message`.
    Transition rules (those using `oldSelf`) run on updates only, on the API server only.
    """

    rule: str
    message: str

    def as_openapi(self) -> dict[str, str]:
        """The ``x-kubernetes-validations`` entry."""
        return {"rule": self.rule, "message": self.message}


def _cel(*rules: CelRule) -> dict[str, Any]:
    return {"x-kubernetes-validations": [r.as_openapi() for r in rules]}


NOT_BLANK_ID = CelRule("self.matches('\\\\S')", "essay id must not be blank")
NOT_BLANK_TEXT = CelRule("self.matches('\\\\S')", "essay text must not be empty or blank")
NOT_BLANK_PROMPT = CelRule("self.matches('\\\\S')", "spec.assignment.prompt must not be blank")
ESSAYS_AT_LEAST_TWO = CelRule("self.size() >= 2", "spec.essays needs at least 2 essays")
ESSAY_IDS_UNIQUE = CelRule(
    "self.map(e, e.id).distinct().size() == self.size()",
    "essay ids in spec.essays must be unique",
)
SOURCES_AT_LEAST_ONE = CelRule(
    "self.size() >= 1", "spec.essaysFrom needs at least one ConfigMap reference"
)
EXACTLY_ONE_SOURCE = CelRule(
    "has(self.essays) != has(self.essaysFrom)",
    "set exactly one of spec.essays and spec.essaysFrom",
)
TIMEOUT_BOUNDS = CelRule(
    "duration(self) >= duration('1m') && duration(self) <= duration('168h')",
    "spec.limits.timeout must be between 1m and 168h",
)
IMMUTABLE_ESSAYS = CelRule(
    "has(self.essays) == has(oldSelf.essays) && (!has(self.essays) || self.essays == "
    "oldSelf.essays)",
    "spec.essays is immutable after creation",
)
IMMUTABLE_SOURCES = CelRule(
    "has(self.essaysFrom) == has(oldSelf.essaysFrom) && (!has(self.essaysFrom) || "
    "self.essaysFrom == oldSelf.essaysFrom)",
    "spec.essaysFrom is immutable after creation",
)
IMMUTABLE_ASSIGNMENT = CelRule(
    "self.assignment == oldSelf.assignment", "spec.assignment is immutable after creation"
)
IMMUTABLE_JUDGE = CelRule(
    "has(self.judge) == has(oldSelf.judge) && (!has(self.judge) || self.judge == oldSelf.judge)",
    "spec.judge is immutable after creation",
)
IMMUTABLE_JUDGES = CelRule(
    "has(self.judges) == has(oldSelf.judges) && "
    "(!has(self.judges) || self.judges == oldSelf.judges)",
    "spec.judges is immutable after creation",
)
JUDGE_OR_PANEL = CelRule(
    "!has(self.judges) || (!has(self.judge.provider) && !has(self.judge.model) && "
    "!has(self.judge.temperature) && !has(self.judge.maxTokens))",
    "set spec.judge or spec.judges (a panel), not both",
)
PANEL_MAX = 10
"""Most judges in a panel."""
CANCEL_IS_FINAL = CelRule(
    "!has(oldSelf.cancel) || !oldSelf.cancel || (has(self.cancel) && self.cancel)",
    "spec.cancel cannot be set back to false: a cancelled batch stays cancelled",
)
TRANSITION_RULES = (
    IMMUTABLE_ESSAYS,
    IMMUTABLE_SOURCES,
    IMMUTABLE_ASSIGNMENT,
    IMMUTABLE_JUDGE,
    IMMUTABLE_JUDGES,
    CANCEL_IS_FINAL,
)
"""Rules on updates (API server only): what a batch compares cannot change once it runs, and
a cancellation cannot be taken back."""


def _not_blank(value: str, rule: CelRule) -> str:
    if not re.search(r"\S", value):
        raise ValueError(rule.message)
    return value


def _plain(value: str | None) -> str | None:
    """`value` unchanged; ValueError naming the first control character (NO_CONTROL_CHARACTERS)."""
    return None if value is None else reject_control_characters(value)


def _storable_json(value: Any, path: str) -> None:
    """Raise ValueError naming `path` when `value` holds what JSONB cannot store or JSON cannot
    carry: a control character in a key or string (see NO_CONTROL_CHARACTERS), NaN or an
    infinity (JSONL read by Python's json module accepts both)."""
    if isinstance(value, str):
        try:
            reject_control_characters(value)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path}: {value} is not a JSON number (NaN and infinities are not)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable_json(str(key), f"{path} key {key!r}")
            _storable_json(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _storable_json(item, f"{path}[{i}]")


def duration_seconds(text: str) -> int:
    """Seconds of a duration such as ``4h``, ``90m``, ``1h30m`` or ``45s``.

    Raises ValueError naming the text when it does not match DURATION_PATTERN or is empty.
    """
    match = re.fullmatch(DURATION_PATTERN, text)
    if match is None or not text:
        raise ValueError(f"not a duration like 4h, 90m or 1h30m: {text!r}")
    hours, minutes, seconds = (int(g[:-1]) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


class _SpecModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Essay(_SpecModel):
    """One essay: its id (unique in the batch), its text, and optional metadata.

    `metadata` (e.g. a known score, a class) is kept with the results and passed in the
    comparison requests' metadata; it is never shown to a judge.
    """

    id: str = Field(
        min_length=1,
        max_length=ESSAY_ID_MAX_CHARS,
        description="Essay id, unique within the batch (e.g. the student's submission id).",
        json_schema_extra={**_cel(NOT_BLANK_ID), "pattern": NO_CONTROL_CHARACTERS},
    )
    text: str = Field(
        min_length=1,
        max_length=INLINE_ESSAY_MAX_CHARS,
        description="The essay's full text (plain text, no control characters but tab and "
        "line breaks).",
        json_schema_extra={**_cel(NOT_BLANK_TEXT), "pattern": NO_CONTROL_CHARACTERS},
    )
    metadata: dict[str, Any] | None = Field(
        default=None,
        max_length=METADATA_MAX_PROPERTIES,
        description="Free-form data kept with the results and sent in request metadata, "
        'never in the prompt (e.g. {"true_score": 3.5} for the simulated judge). Keys and '
        "strings hold no control characters, numbers are finite (the operator refuses such "
        "a spec). `anchorGrade` (a number) makes the essay an anchor: every essay then gets a "
        "grade projected from the anchors' grades.",
        json_schema_extra={
            # The one key with a meaning gets a type the API server checks at apply time; CEL
            # cannot see preserved unknown fields, so a schema property is the way to say it.
            "properties": {
                ANCHOR_GRADE_KEY: {
                    "type": "number",
                    "description": "The essay's known grade (a number, e.g. 1-5): makes it an "
                    "anchor for the projected grades.",
                }
            },
            "x-kubernetes-preserve-unknown-fields": True,
        },
    )

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, value: str) -> str:
        reject_control_characters(value)
        return _not_blank(value, NOT_BLANK_ID)

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        reject_control_characters(value)
        return _not_blank(value, NOT_BLANK_TEXT)

    @field_validator("metadata")
    @classmethod
    def _metadata_storable(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # No schema equivalent (metadata is free-form): the operator refuses such a spec.
        _storable_json(value, "metadata")
        grade = (value or {}).get(ANCHOR_GRADE_KEY)
        if grade is None or (
            isinstance(grade, int | float) and not isinstance(grade, bool) and math.isfinite(grade)
        ):
            return value
        raise ValueError(f"metadata.{ANCHOR_GRADE_KEY} must be a finite number, got {grade!r}")


class EssaySource(_SpecModel):
    """A ConfigMap in the batch's namespace holding essays as CSV or JSONL.

    CSV: a header row with columns `id` and `text`, any other columns become each essay's
    metadata (numbers parsed as numbers, empty cells left out). JSONL: one JSON object a line,
    `{"id": ..., "text": ..., "metadata": {...}}`. Without `key` every key ending in `.csv`
    or `.jsonl` is read, in key order; `format` overrides the format the key's suffix implies.
    """

    config_map: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Name of the ConfigMap (same namespace as the CJBatch).",
    )
    key: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="One key of the ConfigMap to read; unset reads every .csv/.jsonl key.",
    )
    format: Literal["csv", "jsonl"] | None = Field(
        default=None,
        description="Format of the data; unset: from the key's suffix (.csv or .jsonl).",
    )


class Assignment(_SpecModel):
    """What the essays answer: shown to the judge before the two essays."""

    prompt: str = Field(
        min_length=1,
        max_length=PROMPT_MAX_CHARS,
        description="The assignment prompt the students wrote to.",
        json_schema_extra={**_cel(NOT_BLANK_PROMPT), "pattern": NO_CONTROL_CHARACTERS},
    )
    rubric: str | None = Field(
        default=None,
        max_length=RUBRIC_MAX_CHARS,
        description="The rubric or criteria the judge should apply.",
        json_schema_extra={"pattern": NO_CONTROL_CHARACTERS},
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        reject_control_characters(value)
        return _not_blank(value, NOT_BLANK_PROMPT)

    @field_validator("rubric")
    @classmethod
    def _rubric_plain(cls, value: str | None) -> str | None:
        return _plain(value)

    def user_prompt(self) -> str:
        """The request's `user_prompt`: the prompt, then the rubric when there is one."""
        if self.rubric is None or not self.rubric.strip():
            return f"Assignment:\n{self.prompt.strip()}"
        return f"Assignment:\n{self.prompt.strip()}\n\nRubric:\n{self.rubric.strip()}"


class Judge(_SpecModel):
    """The LLM judge; unset fields fall back to the provider side's configuration."""

    provider: LLMProviderType | None = Field(
        default=None, description="Judge provider; unset: the workers' default provider."
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Model name; unset: the workers' default model of the provider.",
        json_schema_extra={"pattern": NO_CONTROL_CHARACTERS},
    )
    temperature: float | None = Field(
        default=None, ge=0.0, le=2.0, description="Sampling temperature."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=100_000, description="Answer token limit."
    )

    @field_validator("model")
    @classmethod
    def _model_plain(cls, value: str | None) -> str | None:
        return _plain(value)


class PanelJudge(Judge):
    """One judge of a panel: the judge and its share of the comparisons."""

    share: float = Field(
        default=1.0,
        gt=0.0,
        le=100.0,
        description="Relative share of the comparisons this judge answers (default 1: equal "
        "shares).",
    )


class Comparisons(_SpecModel):
    """How many comparisons to ask for."""

    target_per_essay: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Comparisons each essay should take part in: the batch asks for at most "
        "ceil(essays x target / 2) comparisons (fewer when a stopping rule holds first).",
    )
    max_total: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Hard budget: most comparisons the batch asks for. Retries of a failed "
        "comparison do not count against it.",
    )


class Stopping(_SpecModel):
    """When to stop asking for comparisons before the budget is spent."""

    score_stability_se: float = Field(
        default=DEFAULT_STABILITY_THRESHOLD_SE,
        alias="scoreStabilitySE",
        gt=0.0,
        le=10.0,
        description="Stop when the scores moved by less than this many standard errors (root "
        "mean square over essays) between two fits, once at least minResultsForStability "
        "comparisons have a winner. The default 0.15 is reached after about 22-30 comparisons "
        "per essay (docs/scoring.md).",
    )
    min_results_for_stability: int = Field(
        default=12,
        ge=0,
        description="Results needed before score stability may stop the batch.",
    )
    reliability_target: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Stop when the (empirical-Bayes) reliability reaches this (e.g. 0.8).",
    )


class Limits(_SpecModel):
    """Cost, time and failure limits."""

    max_cost_usd: float | None = Field(
        default=None,
        alias="maxCostUSD",
        ge=0.0,
        description="Cost limit (USD): each comparison reserves its estimated cost before it "
        "is submitted, and is submitted only while spent + reserved + its own stays within "
        "this; then the batch is scored with what it has (reason CostLimitExceeded).",
    )
    timeout: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        pattern=DURATION_PATTERN,
        description="Time from creation after which the batch is scored if at least "
        "minSuccessRate of its comparisons succeeded, else FAILED (e.g. 4h, 90m). Unset: the "
        "operator's BATCH_TIMEOUT_HOURS (default 4h).",
        json_schema_extra=_cel(TIMEOUT_BOUNDS),
    )
    min_success_rate: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Fraction of comparisons that must end with a winner (after retries) for "
        "the batch to complete; below it the batch is FAILED. Unset: the operator's "
        "MIN_SUCCESS_RATE_THRESHOLD (default 0.8).",
    )
    max_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Times a failed comparison is retried (new correlation id, attempt+1).",
    )

    @field_validator("timeout")
    @classmethod
    def _timeout_bounds(cls, value: str | None) -> str | None:
        if value is None:
            return None
        seconds = duration_seconds(value)
        if not TIMEOUT_MIN_SECONDS <= seconds <= TIMEOUT_MAX_SECONDS:
            raise ValueError(TIMEOUT_BOUNDS.message)
        return value

    def timeout_seconds(self, default_seconds: float) -> float:
        """The timeout in seconds, `default_seconds` when unset."""
        return float(duration_seconds(self.timeout)) if self.timeout else default_seconds


def all_pairs(n_essays: int) -> int:
    """The number of distinct pairs of `n_essays` essays, n(n-1)/2 (0 below 2 essays)."""
    return max(0, n_essays * (n_essays - 1) // 2)


class CJBatchSpec(_SpecModel):
    """`spec` of a CJBatch: the essays, the assignment, the judge and the rules of the run.

    Raises `pydantic.ValidationError` with the same messages the API server gives for the
    CEL rules (see `CelRule`). `essays`, `essaysFrom`, `assignment` and `judge` are immutable
    after creation (enforced by the API server); `comparisons`, `stopping`, `limits` and
    `suspend` may change while the batch runs; `cancel` may be set once (never unset).
    """

    model_config = ConfigDict(
        json_schema_extra=_cel(EXACTLY_ONE_SOURCE, JUDGE_OR_PANEL, *TRANSITION_RULES)
    )

    essays: list[Essay] | None = Field(
        default=None,
        max_length=INLINE_ESSAYS_MAX,
        description="The essays, inline (at most 500; use essaysFrom for more).",
        json_schema_extra=_cel(ESSAYS_AT_LEAST_TWO, ESSAY_IDS_UNIQUE),
    )
    essays_from: list[EssaySource] | None = Field(
        default=None,
        max_length=ESSAY_SOURCES_MAX,
        description="ConfigMaps holding the essays (CSV or JSONL), read in order.",
        json_schema_extra=_cel(SOURCES_AT_LEAST_ONE),
    )
    assignment: Assignment = Field(description="The assignment prompt and rubric.")
    judge: Judge = Field(
        default_factory=Judge,
        description="The LLM judge (provider, model, temperature, maxTokens).",
        json_schema_extra={"default": {}},
    )
    judges: list[PanelJudge] | None = Field(
        default=None,
        min_length=2,
        max_length=PANEL_MAX,
        description="A panel of 2-10 judges instead of spec.judge: each comparison is asked of "
        "one of them (balanced over essays and slots, by share); one Bradley-Terry scale is "
        "fitted to all their answers, with each judge's agreement, order effect and misfit "
        "reported.",
    )
    comparisons: Comparisons = Field(
        default_factory=Comparisons,
        description="Comparison target per essay and total budget.",
        json_schema_extra={"default": {}},
    )
    stopping: Stopping = Field(
        default_factory=Stopping,
        description="Stopping rules: score stability, reliability target.",
        json_schema_extra={"default": {}},
    )
    limits: Limits = Field(
        default_factory=Limits,
        description="Cost, time and failure limits.",
        json_schema_extra={"default": {}},
    )
    suspend: bool = Field(
        default=False,
        strict=True,  # "yes" is no boolean to the API server either
        description="True stops submitting comparisons (results in flight are still "
        "recorded); false resumes.",
    )
    cancel: bool = Field(
        default=False,
        description="True cancels the batch: its queued comparisons are dropped and it "
        "finishes as Cancelled, keeping the CJBatch, its results and comparisons ConfigMaps "
        "(the latest fit) and its completion event. Cannot be set back to false.",
    )

    @field_validator("essays")
    @classmethod
    def _essays_rules(cls, essays: list[Essay] | None) -> list[Essay] | None:
        if essays is None:
            return None
        if len(essays) < 2:
            raise ValueError(ESSAYS_AT_LEAST_TWO.message)
        if len({e.id for e in essays}) != len(essays):
            raise ValueError(ESSAY_IDS_UNIQUE.message)
        return essays

    @field_validator("essays_from")
    @classmethod
    def _sources_rules(cls, sources: list[EssaySource] | None) -> list[EssaySource] | None:
        if sources is not None and len(sources) < 1:
            raise ValueError(SOURCES_AT_LEAST_ONE.message)
        return sources

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        if (self.essays is None) == (self.essays_from is None):
            raise ValueError(EXACTLY_ONE_SOURCE.message)
        if self.judges is not None and self.judge != Judge():
            raise ValueError(JUDGE_OR_PANEL.message)
        return self

    def panel(self) -> list[Judge]:
        """The judges comparisons are asked of: `judges`, or the single `judge`."""
        return list(self.judges) if self.judges is not None else [self.judge]

    def panel_shares(self) -> list[float]:
        """Each panel judge's relative share of the comparisons (1.0 for a single judge)."""
        return [j.share for j in self.judges] if self.judges is not None else [1.0]

    def effective_budget(self, n_essays: int) -> int:
        """Most comparisons (pairs, retries excluded) for `n_essays` essays.

        ceil(n_essays x targetPerEssay / 2) (each comparison involves two essays), capped by
        maxTotal and by the n(n-1)/2 distinct pairs: pairs are never repeated, since an LLM
        judge asked the same question again mostly repeats its answer, which would count as
        evidence twice (status.budget shows the cap).
        """
        budget = min(-(-n_essays * self.comparisons.target_per_essay // 2), all_pairs(n_essays))
        if self.comparisons.max_total is not None:
            return min(budget, self.comparisons.max_total)
        return budget
