"""Pack essays into ConfigMaps for `spec.essaysFrom` (pure; no cluster I/O).

Kubernetes stores an object of at most 1 MiB (etcd's request limit); each ConfigMap here
holds at most CONFIG_MAP_DATA_BUDGET bytes of JSONL, leaving room for metadata and the
ownerReference added after the CJBatch exists.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cj_operator.spec import Essay

CONFIG_MAP_DATA_BUDGET = 900 * 1024
"""Most bytes of essay data in one ConfigMap (the object limit is 1 MiB = 1,048,576 bytes)."""


def essay_line(essay: Essay) -> str:
    """One JSONL line (with its newline) as `cj_operator.essays_source.parse_jsonl` reads it."""
    record: dict[str, Any] = {"id": essay.id, "text": essay.text}
    if essay.metadata:
        record["metadata"] = essay.metadata
    return json.dumps(record, ensure_ascii=False) + "\n"


def pack_essays(
    batch_name: str, essays: Sequence[Essay], budget: int = CONFIG_MAP_DATA_BUDGET
) -> list[tuple[str, str, str]]:
    """Split essays into ConfigMaps of at most `budget` UTF-8 bytes, keeping their order.

    Returns (config_map_name, key, jsonl) triples: names `<batch>-essays-000`, ...; keys
    `essays-000.jsonl`, .... Raises ValueError naming the essay when one line alone exceeds
    the budget.
    """
    chunks: list[list[str]] = [[]]
    size = 0
    for essay in essays:
        line = essay_line(essay)
        n = len(line.encode("utf-8"))
        if n > budget:
            raise ValueError(
                f"essay {essay.id!r} is {n} bytes as JSON; one ConfigMap holds {budget}"
            )
        if size + n > budget and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += n
    return [
        (f"{batch_name}-essays-{i:03d}", f"essays-{i:03d}.jsonl", "".join(lines))
        for i, lines in enumerate(chunks)
    ]
