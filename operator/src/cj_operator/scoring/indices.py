"""Checking the essay indices of one comparison, as every scoring function takes them."""

from __future__ import annotations

import numpy as np


def essay_pair(
    n_items: int, where: str, roles: tuple[str, str], entry: object, first: object, second: object
) -> tuple[int, int]:
    """`(first, second)` as ints when both are integer indices in ``range(n_items)`` and differ.

    Raises:
        ValueError: naming `where` (e.g. ``outcomes[3]``), the role of a bad index
            (``roles``, e.g. ``("winner", "loser")``) and the whole `entry` for a self-pair.
    """
    for role, index in zip(roles, (first, second), strict=True):
        if (
            isinstance(index, bool)
            or not isinstance(index, int | np.integer)
            or not 0 <= index < n_items
        ):
            raise ValueError(
                f"{where} has {role} index {index!r}, not an integer in 0..{n_items - 1}"
            )
    if first == second:
        raise ValueError(f"{where} compares essay {first} with itself: {entry!r}")
    return int(first), int(second)  # type: ignore[call-overload]  # checked integers above
