"""Reconciliation of a visit with the verified record: pure functions on plain dicts.

``compare`` holds value equality, member matching and the three-way comparison; ``rules`` the
named checks that raise conflict drafts; ``config.Config`` every threshold. No database, no
Flask: the queue worker loads the inputs and stores the drafts (see docs/reconciliation.md).
"""

from sync.reconcile.compare import (
    Comparison,
    FieldOutcome,
    match_members,
    name_similarity,
    three_way,
    values_equal,
    verifies_map,
)
from sync.reconcile.config import DEFAULT, Config
from sync.reconcile.rules import RULES, Context, run_rules

__all__ = [
    "DEFAULT", "RULES", "Comparison", "Config", "Context", "FieldOutcome", "match_members",
    "name_similarity", "run_rules", "three_way", "values_equal", "verifies_map",
]
