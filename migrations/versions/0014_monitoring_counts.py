"""monitoring counters: families marked dirty by triggers, their facts, and the sums

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 16:30:00

The monitoring view counts families (visited once, flagged once per kind) and runs the
registry's eligibility rules in Python, so no trigger can keep its counters alone. The
triggers here only mark a (round, family) pair dirty, in the writer's transaction, whenever a
row that feeds a measure changes; ``sync.monitoring.drain`` then counts those families again
and moves the counters by the difference (docs/monitoring.md, "How the figures are kept").

Marked: a visit inserted, deleted, or with a changed status, round, family or moment; a
conflict of the four monitored kinds inserted, deleted, or changed in status, resolution,
kind, round, family or creation time; a verified version written from a visit; a verified
record written (every round the family was counted in); a family's kelurahan or desil
changed (likewise). The upgrade marks every pair already there, so a live database is counted
by its first drain.
"""
from alembic import op
import sqlalchemy as sa

import sync.db  # noqa: F401  (JSONDoc)
from sqlalchemy import Text  # noqa: F401  (autogenerate writes JSONB(astext_type=Text()))
from sqlalchemy.dialects import postgresql  # noqa: F401

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

KINDS = "('inclusion_error', 'exclusion_error', 'deceased_receiving_aid', 'moved_receiving_aid')"
VISIT_COLUMNS = ("status", "round_id", "household_id", "started_at", "received_at",
                 "processed_at", "reviewed_at")
CONFLICT_COLUMNS = ("status", "resolution", "kind", "round_id", "household_id", "created_at")
RECORD_COLUMNS = ("doc", "registry_version", "local_changes")
FAMILY_COLUMNS = ("kode_kelurahan", "desil")


def _changed(columns, distinct="IS NOT"):
    return " OR ".join(f"OLD.{c} {distinct} NEW.{c}" for c in columns)


# --- SQLite ------------------------------------------------------------------------------


# ON CONFLICT DO NOTHING, not INSERT OR IGNORE: a foreign-key action (a round's deletion
# setting conflicts.round_id to NULL) runs the trigger under the outer statement's ABORT.
NOTHING = "ON CONFLICT DO NOTHING"


def _sqlite_mark(r):
    return ("INSERT INTO monitoring_dirty (round_id, household_id) "
            f"SELECT {r}.round_id, {r}.household_id WHERE {r}.round_id IS NOT NULL {NOTHING};")


def _sqlite_mark_rounds(household):
    """Every round the family was counted in."""
    return ("INSERT INTO monitoring_dirty (round_id, household_id) "
            f"SELECT round_id, household_id FROM monitoring_families "
            f"WHERE household_id = {household} {NOTHING};")


SQLITE_TRIGGERS = {
    "monitoring_visits_ins": ("AFTER INSERT ON visits", _sqlite_mark("NEW")),
    "monitoring_visits_del": ("AFTER DELETE ON visits", _sqlite_mark("OLD")),
    "monitoring_visits_upd": (
        f"AFTER UPDATE OF {', '.join(VISIT_COLUMNS)} ON visits WHEN {_changed(VISIT_COLUMNS)}",
        _sqlite_mark("OLD") + " " + _sqlite_mark("NEW")),
    "monitoring_conflicts_ins": (f"AFTER INSERT ON conflicts WHEN NEW.kind IN {KINDS}",
                                 _sqlite_mark("NEW")),
    "monitoring_conflicts_del": (f"AFTER DELETE ON conflicts WHEN OLD.kind IN {KINDS}",
                                 _sqlite_mark("OLD")),
    "monitoring_conflicts_upd": (
        f"AFTER UPDATE OF {', '.join(CONFLICT_COLUMNS)} ON conflicts WHEN "
        f"(OLD.kind IN {KINDS} OR NEW.kind IN {KINDS}) AND ({_changed(CONFLICT_COLUMNS)})",
        _sqlite_mark("OLD") + " " + _sqlite_mark("NEW")),
    "monitoring_verified_versions_ins": (
        "AFTER INSERT ON verified_versions WHEN NEW.visit_uuid IS NOT NULL",
        "INSERT INTO monitoring_dirty (round_id, household_id) "
        "SELECT v.round_id, NEW.household_id FROM visits v "
        f"WHERE v.uuid = NEW.visit_uuid AND v.round_id IS NOT NULL {NOTHING};"),
    "monitoring_verified_records_ins": ("AFTER INSERT ON verified_records",
                                        _sqlite_mark_rounds("NEW.household_id")),
    "monitoring_verified_records_upd": (
        f"AFTER UPDATE OF {', '.join(RECORD_COLUMNS)} ON verified_records WHEN "
        f"{_changed(RECORD_COLUMNS)}", _sqlite_mark_rounds("NEW.household_id")),
    "monitoring_keluarga_upd": (
        f"AFTER UPDATE OF {', '.join(FAMILY_COLUMNS)} ON keluarga WHEN "
        f"{_changed(FAMILY_COLUMNS)}", _sqlite_mark_rounds("NEW.id")),
}

# --- PostgreSQL --------------------------------------------------------------------------

_PG_MARK = ("INSERT INTO monitoring_dirty (round_id, household_id) VALUES ({r}.round_id, "
            "{r}.household_id) ON CONFLICT DO NOTHING")
_PG_MARK_ROUNDS = ("INSERT INTO monitoring_dirty (round_id, household_id) SELECT round_id, "
                   "household_id FROM monitoring_families WHERE household_id = {h} "
                   "ON CONFLICT DO NOTHING")

PG_FUNCTIONS = {
    # visits and conflicts: the old and the new row's pair
    "monitoring_mark_row": f"""
BEGIN
  IF TG_OP <> 'INSERT' AND OLD.round_id IS NOT NULL THEN
    {_PG_MARK.format(r="OLD")};
  END IF;
  IF TG_OP <> 'DELETE' AND NEW.round_id IS NOT NULL THEN
    {_PG_MARK.format(r="NEW")};
  END IF;
  RETURN NULL;
END""",
    "monitoring_mark_version": """
BEGIN
  INSERT INTO monitoring_dirty (round_id, household_id)
    SELECT v.round_id, NEW.household_id FROM visits v
    WHERE v.uuid = NEW.visit_uuid AND v.round_id IS NOT NULL ON CONFLICT DO NOTHING;
  RETURN NULL;
END""",
    "monitoring_mark_record": f"""
BEGIN
  {_PG_MARK_ROUNDS.format(h="NEW.household_id")};
  RETURN NULL;
END""",
    "monitoring_mark_family": f"""
BEGIN
  {_PG_MARK_ROUNDS.format(h="NEW.id")};
  RETURN NULL;
END""",
}

PG_TRIGGERS = {
    "monitoring_visits_ins_del": ("AFTER INSERT OR DELETE ON visits", "monitoring_mark_row"),
    "monitoring_visits_upd": (
        f"AFTER UPDATE OF {', '.join(VISIT_COLUMNS)} ON visits",
        "monitoring_mark_row", _changed(VISIT_COLUMNS, "IS DISTINCT FROM")),
    "monitoring_conflicts_ins": ("AFTER INSERT ON conflicts", "monitoring_mark_row",
                                 f"NEW.kind IN {KINDS}"),
    "monitoring_conflicts_del": ("AFTER DELETE ON conflicts", "monitoring_mark_row",
                                 f"OLD.kind IN {KINDS}"),
    "monitoring_conflicts_upd": (
        f"AFTER UPDATE OF {', '.join(CONFLICT_COLUMNS)} ON conflicts", "monitoring_mark_row",
        f"(OLD.kind IN {KINDS} OR NEW.kind IN {KINDS}) AND "
        f"({_changed(CONFLICT_COLUMNS, 'IS DISTINCT FROM')})"),
    "monitoring_verified_versions_ins": ("AFTER INSERT ON verified_versions",
                                         "monitoring_mark_version", "NEW.visit_uuid IS NOT NULL"),
    "monitoring_verified_records_ins": ("AFTER INSERT ON verified_records",
                                        "monitoring_mark_record"),
    "monitoring_verified_records_upd": (
        f"AFTER UPDATE OF {', '.join(RECORD_COLUMNS)} ON verified_records",
        "monitoring_mark_record", _changed(RECORD_COLUMNS, "IS DISTINCT FROM")),
    "monitoring_keluarga_upd": (
        f"AFTER UPDATE OF {', '.join(FAMILY_COLUMNS)} ON keluarga", "monitoring_mark_family",
        _changed(FAMILY_COLUMNS, "IS DISTINCT FROM")),
}


def _pg_upgrade():
    for name, body in PG_FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${body}$$")
    for name, (when, function, *condition) in PG_TRIGGERS.items():
        guard = f" WHEN ({condition[0]})" if condition else ""
        op.execute(f"CREATE TRIGGER {name} {when} FOR EACH ROW{guard} "
                   f"EXECUTE FUNCTION {function}()")


def upgrade():
    op.create_table('monitoring_dirty',
    sa.Column('round_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('household_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('round_id', 'household_id', name=op.f('pk_monitoring_dirty'))
    )
    op.create_table('monitoring_families',
    sa.Column('round_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('household_id', sa.String(length=64), nullable=False),
    sa.Column('kelurahan', sa.String(length=13), nullable=False),
    sa.Column('facts', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('round_id', 'household_id', name=op.f('pk_monitoring_families'))
    )
    op.create_index('ix_monitoring_families_household', 'monitoring_families', ['household_id'],
                    unique=False)
    op.create_table('monitoring_counts',
    sa.Column('round_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('kelurahan', sa.String(length=13), nullable=False),
    sa.Column('week', sa.String(length=8), nullable=False),
    sa.Column('metric', sa.String(length=32), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('round_id', 'kelurahan', 'week', 'metric',
                            name=op.f('pk_monitoring_counts'))
    )
    # What is already there is counted by the first drain.
    op.execute("INSERT INTO monitoring_dirty (round_id, household_id) "
               "SELECT round_id, household_id FROM visits WHERE round_id IS NOT NULL UNION "
               "SELECT round_id, household_id FROM conflicts WHERE round_id IS NOT NULL "
               f"AND kind IN {KINDS}")
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
    else:
        for name, (when, body) in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, (when, _function, *_condition) in PG_TRIGGERS.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {when.rsplit(' ON ', 1)[1]}")
        for name in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table('monitoring_counts')
    op.drop_index('ix_monitoring_families_household', table_name='monitoring_families')
    op.drop_table('monitoring_families')
    op.drop_table('monitoring_dirty')
