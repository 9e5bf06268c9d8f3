"""Queries of the live view (``xpm jobs list --watch``): cheap at every refresh."""

from __future__ import annotations

from ._db import IndexDB


def state_counts(db: IndexDB) -> dict[str, int]:
    """Number of jobs of the index in each state (one grouped query, whatever the size)."""
    return {
        state: count for state, count in db.query("SELECT state, COUNT(*) FROM jobs GROUP BY state")
    }
