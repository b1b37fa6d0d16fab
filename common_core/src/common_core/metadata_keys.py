"""Keys of `LLMComparisonRequest.metadata` that both sides rely on.

The operator sets them on every request; the provider echoes the whole dict back in
`LLMComparisonResultV1.request_metadata`. The workers read `BATCH_ID` (to skip requests of a
cancelled batch) and, for the `simulated` judge only, `TRUE_SCORE` inside the essays' metadata.
Metadata is never shown to a judge.
"""

from __future__ import annotations

BATCH_ID = "batch_id"
"""The CJBatch's metadata.uid (str). The provider's cancel route is keyed on it."""

PAIR_ID = "pair_id"
"""The operator's comparison-pair row id (int)."""

ROUND = "round"
"""The pair-selection round the comparison belongs to (int, from 1)."""

ATTEMPT = "attempt"
"""1 for the first submission of a pair, +1 for each retry (int)."""

ESSAY_A_ID = "essay_a_id"
ESSAY_B_ID = "essay_b_id"
"""The essays' ids from the CJBatch spec (str)."""

ESSAY_A_METADATA = "essay_a_metadata"
ESSAY_B_METADATA = "essay_b_metadata"
"""Each essay's own metadata from the CJBatch spec (dict), e.g. a known score."""

IDENTITY_KEYS = (BATCH_ID, PAIR_ID, ESSAY_A_ID, ESSAY_B_ID)
"""The keys that name what a result is about. The operator sends them with every request and
checks a result's echo against the pair of its correlation id: a verdict must echo all of
them; an error event may lack some (a worker that gives up on an unreadable entry echoes what
it can read), but none that it has may differ."""

TRUE_SCORE = "true_score"
"""Inside ESSAY_*_METADATA: the hidden ability the `simulated` judge draws winners from (float)."""
