"""Every CamelCase reason the operator writes: stop reasons, condition reasons, Event reasons.

A reason is what `kubectl describe` and `status.conditions[].reason` show, so the names are a
public contract: README.md and docs/ use exactly these (tests/unit/operator/test_reasons.py
compares them). metav1.Condition requires CamelCase reasons (pattern in the CRD).
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a batch is where it is (`Batch.reason`, condition reasons, Event reasons)."""

    # --- why a batch stopped submitting (Succeeded's reason once it finished) ---------------
    INSUFFICIENT_ESSAYS = "InsufficientEssays"
    """Fewer than 2 essays: nothing to compare; the batch completes at once."""
    RELIABILITY_REACHED = "ReliabilityReached"
    """The reliability reached `spec.stopping.reliabilityTarget`."""
    SCORES_STABLE = "ScoresStable"
    """The scores moved by less than `spec.stopping.scoreStabilitySE` standard errors."""
    BUDGET_EXHAUSTED = "BudgetExhausted"
    """The comparison budget (`targetPerEssay`, `maxTotal`) is spent."""
    ALL_PAIRS_COMPARED = "AllPairsCompared"
    """The pairing policy found no further pair to compare."""
    COST_LIMIT_EXCEEDED = "CostLimitExceeded"
    """The estimated cost reached `spec.limits.maxCostUSD`."""
    LOW_SUCCESS_RATE = "LowSuccessRate"
    """Too few comparisons ended with a winner (`spec.limits.minSuccessRate`): FAILED."""
    JUDGE_REFUSED = "JudgeRefused"
    """The provider API refuses the batch's judge (a provider it does not enable, a model its
    manifest does not know): FAILED at the first refusal, not pair by pair."""
    TIMED_OUT = "TimedOut"
    """`spec.limits.timeout` passed: scored when enough succeeded, else FAILED."""
    CANCELLED = "Cancelled"
    """The CJBatch was cancelled (`spec.cancel`) or deleted before it finished."""
    # --- essays -------------------------------------------------------------------------------
    INVALID_ESSAYS = "InvalidEssays"
    """The essays cannot be used (duplicate ids, empty text, unreadable ConfigMap): FAILED."""
    CONFIG_MAP_NOT_FOUND = "ConfigMapNotFound"
    """A ConfigMap named in `spec.essaysFrom` does not exist (yet); checked again later."""
    ESSAYS_STORED = "EssaysStored"
    """The essays are stored (EssaysLoaded=True, and an Event)."""
    LOADING = "Loading"
    """EssaysLoaded=Unknown while the essays are read."""
    LOADING_ESSAYS = "LoadingEssays"
    """Progressing=False while the essays are read."""
    # --- running ------------------------------------------------------------------------------
    IN_PROGRESS = "InProgress"
    """Succeeded=Unknown: the batch has not finished."""
    SUSPENDED = "Suspended"
    """Progressing=False: `spec.suspend` is true."""
    SUSPEND_REQUESTED = "SuspendRequested"
    """Suspended=True."""
    NOT_SUSPENDED = "NotSuspended"
    """Suspended=False."""
    # --- diagnostics --------------------------------------------------------------------------
    NOT_FITTED = "NotFitted"
    """OrderEffect=Unknown: no fit yet."""
    ORDER_EFFECT_SIGNIFICANT = "OrderEffectSignificant"
    """OrderEffect=True: the judge favours one slot (p < 0.01); also a Warning Event."""
    NO_ORDER_EFFECT = "NoOrderEffect"
    """OrderEffect=False."""
    # --- results ---------------------------------------------------------------------------
    RESULTS_STORED = "ResultsStored"
    """ResultsWritten=True: the results ConfigMap holds the final results."""
    RESULTS_CONFIG_MAP_NOT_OWNED = "ResultsConfigMapNotOwned"
    """ResultsWritten=False (and a Warning Event): a ConfigMap the batch does not own has the
    results ConfigMap's name; it is never overwritten."""
    RESULTS_READY = "ResultsReady"
    """Ready=True: the batch completed and its results ConfigMap holds the ranking."""
    WRITING_RESULTS = "WritingResults"
    """Ready=False: the batch completed and its results ConfigMap is being written."""
    COMPARISONS_STORED = "ComparisonsStored"
    """ComparisonsWritten=True: the comparisons ConfigMap holds every comparison."""
    COMPARISONS_TOO_LARGE = "ComparisonsTooLarge"
    """ComparisonsWritten=False: the comparisons are larger than the ConfigMap may hold
    (CJ_OPERATOR_COMPARISONS_MAX_BYTES); they are in PostgreSQL only."""
    COMPARISONS_CONFIG_MAP_NOT_OWNED = "ComparisonsConfigMapNotOwned"
    """ComparisonsWritten=False (and a Warning Event): a ConfigMap the batch does not own has
    the comparisons ConfigMap's name; it is never overwritten."""
    # --- Events ---------------------------------------------------------------------------------
    ROUND_PLANNED = "RoundPlanned"
    """Event: a new round of comparisons is stored and about to be submitted."""
    PROVIDER_UNAVAILABLE = "ProviderUnavailable"
    """Event: the provider API cannot be reached; the pairs are sent again later."""
    COMPARISONS_REFUSED = "ComparisonsRefused"
    """Event: the provider API refused a whole submission."""
    COMPLETED = "Completed"
    """Event: the batch completed."""
    FAILED = "Failed"
    """Event: the batch failed."""


STOP_REASONS = frozenset(
    {
        Reason.INSUFFICIENT_ESSAYS,
        Reason.RELIABILITY_REACHED,
        Reason.SCORES_STABLE,
        Reason.BUDGET_EXHAUSTED,
        Reason.ALL_PAIRS_COMPARED,
        Reason.COST_LIMIT_EXCEEDED,
        Reason.LOW_SUCCESS_RATE,
        Reason.TIMED_OUT,
        Reason.CANCELLED,
        Reason.INVALID_ESSAYS,
    }
)
"""The reasons a finished batch can carry in `Succeeded` (docs/crd-reference.md lists them)."""
