"""progress counters per area, kept by triggers

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:30:00

The counters are kept by triggers so that every writer (ORM, Core bulk statements, COPY,
foreign-key cascades) updates them in its own transaction. SQLite: row triggers; decrements
are plain UPDATEs (a missing row stays missing, so emptying tables in any order leaves no
negative rows). PostgreSQL: statement-level triggers with transition tables for INSERT, UPDATE
and DELETE (one aggregated upsert per statement, in key order so that concurrent writers lock
counter rows in the same order); a row trigger for a family's move or removal.
"""
from alembic import op
import sqlalchemy as sa

import sync.db  # noqa: F401  (UTCDateTime)
from sqlalchemy import Text  # noqa: F401  (autogenerate writes JSONB(astext_type=Text()))
from sqlalchemy.dialects import postgresql  # noqa: F401

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

UPSERT = ("ON CONFLICT (round_id, kelurahan, metric) DO UPDATE "
          "SET n = progress_counts.n + excluded.n")

# --- SQLite ------------------------------------------------------------------------------

# The metrics of one assignment row R and one conflict row R, as a one-column select.
_A_METRICS = ("(SELECT 'assigned' AS metric UNION ALL SELECT {r}.status "
              "UNION ALL SELECT {r}.review_state)")
_C_METRICS = ("(SELECT CASE WHEN {r}.status = 'open' THEN 'conflicts_open:' || {r}.kind END "
              "AS metric UNION ALL SELECT CASE WHEN {r}.status = 'open' "
              "AND {r}.escalated_at IS NOT NULL THEN 'conflicts_escalated' END)")


def _sqlite_assign_add(r):
    return (f"INSERT INTO progress_counts (round_id, kelurahan, metric, n) "
            f"SELECT {r}.round_id, k.kode_kelurahan, m.metric, 1 FROM keluarga k, "
            f"{_A_METRICS.format(r=r)} m WHERE k.id = {r}.household_id "
            f"AND m.metric IS NOT NULL {UPSERT};")


def _sqlite_assign_sub(r):
    return (f"UPDATE progress_counts SET n = n - 1 WHERE round_id = {r}.round_id "
            f"AND kelurahan = (SELECT kode_kelurahan FROM keluarga WHERE id = {r}.household_id) "
            f"AND metric IN ('assigned', {r}.status, {r}.review_state);")


def _sqlite_conflict_add(r):
    return (f"INSERT INTO progress_counts (round_id, kelurahan, metric, n) "
            f"SELECT coalesce({r}.round_id, 0), {r}.kelurahan, m.metric, 1 "
            f"FROM {_C_METRICS.format(r=r)} m WHERE m.metric IS NOT NULL {UPSERT};")


def _sqlite_conflict_sub(r):
    return (f"UPDATE progress_counts SET n = n - 1 WHERE {r}.status = 'open' "
            f"AND round_id = coalesce({r}.round_id, 0) AND kelurahan = {r}.kelurahan "
            f"AND metric IN ('conflicts_open:' || {r}.kind, CASE WHEN {r}.escalated_at "
            f"IS NOT NULL THEN 'conflicts_escalated' END);")


# The assignment counts of family R moved out of (sub) or into (add) its kelurahan.
_SQLITE_FAMILY_ASSIGN_SUB = (
    "UPDATE progress_counts SET n = n - (SELECT count(*) FROM assignments a "
    "WHERE a.household_id = {r}.id AND a.round_id = progress_counts.round_id "
    "AND progress_counts.metric IN ('assigned', a.status, a.review_state)) "
    "WHERE kelurahan = {r}.kode_kelurahan AND round_id IN "
    "(SELECT round_id FROM assignments WHERE household_id = {r}.id);")
_SQLITE_FAMILY_ASSIGN_ADD = (
    "INSERT INTO progress_counts (round_id, kelurahan, metric, n) "
    "SELECT a.round_id, {r}.kode_kelurahan, m.metric, count(*) FROM assignments a, "
    "(SELECT 'assigned' AS metric UNION ALL SELECT 'pending' UNION ALL SELECT 'visited' "
    "UNION ALL SELECT 'returned' UNION ALL SELECT 'done' UNION ALL SELECT 'verified' "
    "UNION ALL SELECT 'needs_review' UNION ALL SELECT 'rejected') m "
    "WHERE a.household_id = {r}.id "
    "AND m.metric IN ('assigned', a.status, a.review_state) "
    "GROUP BY a.round_id, m.metric " + UPSERT + ";")

_A_CHANGED = ("OLD.status IS NOT NEW.status OR OLD.review_state IS NOT NEW.review_state "
              "OR OLD.round_id IS NOT NEW.round_id OR OLD.household_id IS NOT NEW.household_id")
_C_CHANGED = ("OLD.status IS NOT NEW.status OR OLD.kind IS NOT NEW.kind "
              "OR OLD.round_id IS NOT NEW.round_id OR OLD.kelurahan IS NOT NEW.kelurahan "
              "OR (OLD.escalated_at IS NULL) <> (NEW.escalated_at IS NULL)")

SQLITE_TRIGGERS = {
    "progress_keluarga_ins": (
        "AFTER INSERT ON keluarga WHEN NEW.removed_at IS NULL",
        "INSERT INTO progress_counts (round_id, kelurahan, metric, n) "
        f"VALUES (0, NEW.kode_kelurahan, 'households', 1) {UPSERT};"),
    "progress_keluarga_del": (
        # BEFORE: the cascade to assignments runs after the family row is gone, when the
        # assignment triggers can no longer find its kelurahan.
        "BEFORE DELETE ON keluarga",
        "UPDATE progress_counts SET n = n - 1 WHERE OLD.removed_at IS NULL AND round_id = 0 "
        "AND kelurahan = OLD.kode_kelurahan AND metric = 'households'; "
        + _SQLITE_FAMILY_ASSIGN_SUB.format(r="OLD")),
    "progress_keluarga_upd": (
        "AFTER UPDATE OF kode_kelurahan, removed_at ON keluarga WHEN "
        "OLD.kode_kelurahan IS NOT NEW.kode_kelurahan "
        "OR (OLD.removed_at IS NULL) <> (NEW.removed_at IS NULL)",
        "UPDATE progress_counts SET n = n - 1 WHERE OLD.removed_at IS NULL AND round_id = 0 "
        "AND kelurahan = OLD.kode_kelurahan AND metric = 'households'; "
        "INSERT INTO progress_counts (round_id, kelurahan, metric, n) "
        "SELECT 0, NEW.kode_kelurahan, 'households', 1 WHERE NEW.removed_at IS NULL "
        f"{UPSERT}; "
        + _SQLITE_FAMILY_ASSIGN_SUB.format(r="OLD").replace(
            "WHERE kelurahan", "WHERE OLD.kode_kelurahan IS NOT NEW.kode_kelurahan AND kelurahan")
        + " " + _SQLITE_FAMILY_ASSIGN_ADD.format(r="NEW").replace(
            "WHERE a.household_id", "WHERE OLD.kode_kelurahan IS NOT NEW.kode_kelurahan "
            "AND a.household_id")),
    "progress_assignments_ins": ("AFTER INSERT ON assignments", _sqlite_assign_add("NEW")),
    "progress_assignments_del": ("AFTER DELETE ON assignments", _sqlite_assign_sub("OLD")),
    "progress_assignments_upd": (
        f"AFTER UPDATE ON assignments WHEN {_A_CHANGED}",
        _sqlite_assign_sub("OLD") + " " + _sqlite_assign_add("NEW")),
    "progress_conflicts_ins": ("AFTER INSERT ON conflicts WHEN NEW.status = 'open'",
                               _sqlite_conflict_add("NEW")),
    "progress_conflicts_del": ("AFTER DELETE ON conflicts WHEN OLD.status = 'open'",
                               _sqlite_conflict_sub("OLD")),
    "progress_conflicts_upd": (
        f"AFTER UPDATE ON conflicts WHEN {_C_CHANGED}",
        _sqlite_conflict_sub("OLD") + " " + _sqlite_conflict_add("NEW")),
}

# --- PostgreSQL --------------------------------------------------------------------------


def _pg_apply(deltas: str) -> str:
    """Upsert ``deltas`` (round_id, kelurahan, metric, n) summed per key, in key order."""
    return (f"INSERT INTO progress_counts AS p (round_id, kelurahan, metric, n) "
            f"SELECT round_id, kelurahan, metric, sum(n) FROM ({deltas}) d "
            f"GROUP BY round_id, kelurahan, metric HAVING sum(n) <> 0 "
            f"ORDER BY round_id, kelurahan, metric "
            f"ON CONFLICT (round_id, kelurahan, metric) DO UPDATE SET n = p.n + excluded.n")


def _pg_assign_rows(table: str, sign: int) -> str:
    return (f"SELECT a.round_id, k.kode_kelurahan AS kelurahan, m.metric, {sign} AS n "
            f"FROM {table} a JOIN keluarga k ON k.id = a.household_id "
            f"CROSS JOIN LATERAL (VALUES ('assigned'), (a.status), (a.review_state)) "
            f"AS m(metric) WHERE m.metric IS NOT NULL")


def _pg_conflict_rows(table: str, sign: int) -> str:
    return (f"SELECT coalesce(c.round_id, 0) AS round_id, c.kelurahan, m.metric, {sign} AS n "
            f"FROM {table} c CROSS JOIN LATERAL (VALUES ('conflicts_open:' || c.kind), "
            f"(CASE WHEN c.escalated_at IS NOT NULL THEN 'conflicts_escalated' END)) "
            f"AS m(metric) WHERE c.status = 'open' AND m.metric IS NOT NULL")


def _pg_family_rows(table: str, sign: int) -> str:
    return (f"SELECT 0 AS round_id, f.kode_kelurahan AS kelurahan, 'households' AS metric, "
            f"{sign} AS n FROM {table} f WHERE f.removed_at IS NULL")


def _pg_statement_function(name: str, rows) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_pg_apply(rows('new_rows', 1))};
  ELSIF TG_OP = 'DELETE' THEN
    {_pg_apply(rows('old_rows', -1))};
  ELSE
    {_pg_apply(rows('new_rows', 1) + ' UNION ALL ' + rows('old_rows', -1))};
  END IF;
  RETURN NULL;
END $$;"""


# A family's move or removal, and its deletion (before the cascade takes its assignments).
_PG_FAMILY_ROW = f"""
CREATE FUNCTION progress_keluarga_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    {_pg_apply("SELECT 0 AS round_id, OLD.kode_kelurahan AS kelurahan, 'households' AS metric, "
               "-1 AS n WHERE OLD.removed_at IS NULL UNION ALL SELECT 0, NEW.kode_kelurahan, "
               "'households', 1 WHERE NEW.removed_at IS NULL")};
    IF OLD.kode_kelurahan IS DISTINCT FROM NEW.kode_kelurahan THEN
      {_pg_apply("SELECT a.round_id, x.kelurahan, m.metric, x.n FROM assignments a "
                 "CROSS JOIN LATERAL (VALUES (OLD.kode_kelurahan, -1), (NEW.kode_kelurahan, 1)) "
                 "AS x(kelurahan, n) CROSS JOIN LATERAL (VALUES ('assigned'), (a.status), "
                 "(a.review_state)) AS m(metric) WHERE a.household_id = NEW.id "
                 "AND m.metric IS NOT NULL")};
    END IF;
    RETURN NULL;
  END IF;
  {_pg_apply("SELECT a.round_id, OLD.kode_kelurahan AS kelurahan, m.metric, -1 AS n "
             "FROM assignments a CROSS JOIN LATERAL (VALUES ('assigned'), (a.status), "
             "(a.review_state)) AS m(metric) WHERE a.household_id = OLD.id "
             "AND m.metric IS NOT NULL")};
  RETURN OLD;
END $$;"""

PG_STATEMENT = {"keluarga": ("progress_keluarga", _pg_family_rows),
                "assignments": ("progress_assignments", _pg_assign_rows),
                "conflicts": ("progress_conflicts", _pg_conflict_rows)}


def _pg_upgrade():
    for table, (name, rows) in PG_STATEMENT.items():
        op.execute(_pg_statement_function(name, rows))
        op.execute(f"CREATE TRIGGER {name}_ins AFTER INSERT ON {table} REFERENCING NEW TABLE "
                   f"AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
        op.execute(f"CREATE TRIGGER {name}_del AFTER DELETE ON {table} REFERENCING OLD TABLE "
                   f"AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
        if table != "keluarga":
            op.execute(f"CREATE TRIGGER {name}_upd AFTER UPDATE ON {table} REFERENCING "
                       f"OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION {name}()")
    op.execute(_PG_FAMILY_ROW)
    op.execute("CREATE TRIGGER progress_keluarga_upd AFTER UPDATE OF kode_kelurahan, removed_at "
               "ON keluarga FOR EACH ROW WHEN (OLD.kode_kelurahan IS DISTINCT FROM "
               "NEW.kode_kelurahan OR (OLD.removed_at IS NULL) <> (NEW.removed_at IS NULL)) "
               "EXECUTE FUNCTION progress_keluarga_row()")
    op.execute("CREATE TRIGGER progress_keluarga_del_assignments BEFORE DELETE ON keluarga "
               "FOR EACH ROW EXECUTE FUNCTION progress_keluarga_row()")


def _fill():
    """Count what is already there, so an upgrade of a live database starts consistent."""
    op.execute("INSERT INTO progress_counts (round_id, kelurahan, metric, n) "
               "SELECT 0, kode_kelurahan, 'households', count(*) FROM keluarga "
               "WHERE removed_at IS NULL GROUP BY kode_kelurahan")
    for column, group in (("'assigned'", ""), ("a.status", ", a.status"),
                          ("a.review_state", ", a.review_state")):
        op.execute("INSERT INTO progress_counts (round_id, kelurahan, metric, n) "
                   f"SELECT a.round_id, k.kode_kelurahan, {column}, count(*) FROM assignments a "
                   f"JOIN keluarga k ON k.id = a.household_id WHERE {column} IS NOT NULL "
                   f"GROUP BY a.round_id, k.kode_kelurahan{group}")
    op.execute("INSERT INTO progress_counts (round_id, kelurahan, metric, n) "
               "SELECT coalesce(round_id, 0), kelurahan, 'conflicts_open:' || kind, count(*) "
               "FROM conflicts WHERE status = 'open' "
               "GROUP BY coalesce(round_id, 0), kelurahan, kind")
    op.execute("INSERT INTO progress_counts (round_id, kelurahan, metric, n) "
               "SELECT coalesce(round_id, 0), kelurahan, 'conflicts_escalated', count(*) "
               "FROM conflicts WHERE status = 'open' AND escalated_at IS NOT NULL "
               "GROUP BY coalesce(round_id, 0), kelurahan")


def upgrade():
    op.create_table('progress_counts',
    sa.Column('round_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('kelurahan', sa.String(length=13), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('round_id', 'kelurahan', 'metric', name=op.f('pk_progress_counts'))
    )
    _fill()
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
    else:
        for name, (when, body) in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table, (name, _rows) in PG_STATEMENT.items():
            for suffix in ("ins", "del", "upd"):
                op.execute(f"DROP TRIGGER IF EXISTS {name}_{suffix} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        op.execute("DROP TRIGGER IF EXISTS progress_keluarga_del_assignments ON keluarga")
        op.execute("DROP FUNCTION IF EXISTS progress_keluarga_row()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table('progress_counts')
