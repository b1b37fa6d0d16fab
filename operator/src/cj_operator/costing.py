"""A comparison's cost before it is asked, and what still fits under `maxCostUSD` (pure).

The workers charge `cost_estimate` = prompt tokens x input price + completion tokens x output
price (USD per million tokens, from the model manifest the provider API serves at
`GET /api/v1/models`). Before a comparison is submitted its cost is estimated the same way:

- prompt tokens ~ (characters of the user prompt and both essays) / `CHARS_PER_TOKEN`, plus
  `PROMPT_OVERHEAD_TOKENS` for what the workers add (system prompt, message template, the
  answer's tool/JSON schema, the vendor's tool-use preamble);
- completion tokens = the answer limit (`spec.judge.maxTokens`, else `DEFAULT_MAX_TOKENS`,
  the workers' default): the provider stops there, so this part is an upper bound;
- prices: the judge's model in the manifest; when `spec.judge.model` (or the provider) is
  unset, the highest prices the manifest lists for the provider (or for any provider), since
  the workers' default model is not known here; a model the manifest does not list costs 0
  (the workers charge 0 for it too).

That estimate is then calibrated on the batch's own answers: the reservation is estimate x
the largest actual/estimate ratio among the comparisons that used tokens (`calibration`). A
tokenizer that needs more tokens than chars/4 (non-English text), answers far shorter than
the limit, or an unset model are all corrected from the first answers on.

Reservation rule (`Headroom`): a new comparison is reserved only when
spent + reserved (comparisons in flight) + its reservation <= maxCostUSD. Until
`CALIBRATION_MIN_ANSWERS` answers calibrated the estimate, new reservations take at most
`UNCALIBRATED_SHARE` of what is left (at least one comparison when it fits), so an estimate
up to 1 / UNCALIBRATED_SHARE times too low still cannot overshoot. The final cost can then
exceed maxCostUSD only by what the comparisons in flight cost beyond their reservations,
which the calibration keeps below one comparison's cost (tests/unit/operator/test_costing.py
simulates it over random prices, lengths, tokenizers and answer lengths).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from common_core import LLMProviderType, ModelInfo

CHARS_PER_TOKEN = 4
"""Characters per prompt token: the usual rule of thumb for English text with the OpenAI and
Anthropic tokenizers (the workers' rate limiter uses the same, `estimate_tokens`)."""
PROMPT_OVERHEAD_TOKENS = 600
"""Prompt tokens the workers add to every request beyond the user prompt and essays: the
system prompt (~130), the message template and fences (~60), the answer schema (~150) and the
vendor's tool-use preamble (a few hundred for a forced tool call)."""
DEFAULT_MAX_TOKENS = 1024
"""Answer token limit when `spec.judge.maxTokens` is unset: the workers' CJ_WORKER_MAX_TOKENS
default (the calibration corrects a different setting after the first answers)."""
UNCALIBRATED_SHARE = 0.5
"""Share of the room left under maxCostUSD that new reservations may take while the estimate
is not calibrated yet."""
CALIBRATION_MIN_ANSWERS = 10
"""Answers after which the calibration is trusted: the largest of 10 ratios is exceeded by
the next comparison with probability 1/11 (the ratios vary with the answer's length). With
fewer, a single answer's ratio could be far below the next one's, hence the share above."""


@dataclass(frozen=True)
class Price:
    """USD per million tokens, input (prompt) and output (completion)."""

    input_usd_per_mtok: float = 0.0
    output_usd_per_mtok: float = 0.0


def judge_price(
    models: Iterable[ModelInfo], provider: LLMProviderType | None, model: str | None
) -> Price:
    """The judge's prices from the manifest (module docstring): its model's entry; with the
    model or provider unset, the highest input and output prices among the candidates; 0 for
    a model the manifest does not list."""
    candidates = [
        m
        for m in models
        if (provider is None or m.provider == provider) and (model is None or m.model == model)
    ]
    if not candidates:
        return Price()
    return Price(
        input_usd_per_mtok=max(m.input_usd_per_mtok for m in candidates),
        output_usd_per_mtok=max(m.output_usd_per_mtok for m in candidates),
    )


def estimate_prompt_tokens(chars: int) -> int:
    """Prompt tokens of a request whose user prompt and essays have `chars` characters."""
    return math.ceil(max(0, chars) / CHARS_PER_TOKEN) + PROMPT_OVERHEAD_TOKENS


def estimate_cost_usd(price: Price, chars: int, max_tokens: int) -> float:
    """A-priori cost (USD) of one request: `chars` prompt characters, `max_tokens` answer limit.

    e.g. claude-sonnet-4-5 (3 / 15 USD per MTok), 6,000 characters, 1,024 tokens:
    (1,500 + 600) x 3e-6 + 1,024 x 15e-6 = 0.02166 USD.
    """
    prompt = estimate_prompt_tokens(chars)
    return (
        prompt * price.input_usd_per_mtok + max(0, max_tokens) * price.output_usd_per_mtok
    ) / 1_000_000


@dataclass(frozen=True)
class Calibration:
    """The largest actual/estimate cost ratio of a batch's answers (`factor`; None before
    any) and how many answers it is taken over."""

    factor: float | None = None
    answers: int = 0

    @property
    def trusted(self) -> bool:
        """True once `CALIBRATION_MIN_ANSWERS` answers calibrated it."""
        return self.factor is not None and self.answers >= CALIBRATION_MIN_ANSWERS


def calibration(observations: Iterable[tuple[float, float]]) -> Calibration:
    """The calibration of (estimate_usd, actual_usd) pairs, those with a positive estimate."""
    ratios = [actual / estimate for estimate, actual in observations if estimate > 0]
    return Calibration(max(ratios), len(ratios)) if ratios else Calibration()


@dataclass(frozen=True)
class CostModel:
    """How much one comparison of a batch reserves.

    `essay_chars[i]`: characters of essay i; `prompt_chars`: of the batch's user prompt;
    `calibration`: see :func:`calibration` (before any answer, reservations = estimates).
    """

    price: Price
    prompt_chars: int
    essay_chars: Sequence[int]
    max_tokens: int
    calibration: Calibration = Calibration()

    def estimate(self, a: int, b: int) -> float:
        """A-priori cost (USD) of comparing essays `a` and `b` (indices)."""
        chars = self.prompt_chars + self.essay_chars[a] + self.essay_chars[b]
        return estimate_cost_usd(self.price, chars, self.max_tokens)

    def reserve(self, estimate: float) -> float:
        """The reservation (USD) for a comparison estimated at `estimate`."""
        factor = self.calibration.factor
        return estimate * (1.0 if factor is None else factor)


class Headroom:
    """What is left under maxCostUSD for new reservations (module docstring), taken in order.

    `limit` None: no limit, everything fits. Not thread-safe; one decision step uses one.
    """

    def __init__(
        self,
        limit: float | None,
        *,
        spent: float,
        reserved: float,
        calibrated: bool,
    ) -> None:
        self.limit = limit
        self.left = math.inf if limit is None else limit - spent - reserved
        self._cap = self.left if calibrated else self.left * UNCALIBRATED_SHARE
        self.taken = 0.0
        self.count = 0

    def take(self, reservation: float) -> bool:
        """Reserve `reservation` USD when it fits (then True), else change nothing."""
        fits_left = self.taken + reservation <= self.left + 1e-12
        fits_cap = self.taken + reservation <= self._cap + 1e-12
        if not fits_left or (self.count > 0 and not fits_cap):
            return False
        self.taken += reservation
        self.count += 1
        return True


def affordable(reservations: Sequence[float], headroom: Headroom) -> int:
    """How many of `reservations`, from the first, fit in `headroom` (taken from it).

    Stops at the first that does not fit, so a round is cut at a boundary rather than
    keeping only its cheapest (shortest) comparisons.
    """
    for i, reservation in enumerate(reservations):
        if not headroom.take(reservation):
            return i
    return len(reservations)
