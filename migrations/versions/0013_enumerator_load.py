"""enumerator_load: assignment counters per round, enumerator and metric, kept by triggers

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 16:00:00

The supervisor's assignment page shows each enumerator's load in a round: ``assigned`` (every
assignment) and one metric per status (pending, visited, returned, done, closed). Counting them
with ``GROUP BY enumerator_id, status`` reads every assignment of the enumerator (300,000 in the
benchmark); these counters are a few rows per enumerator. They are kept in the style of
``progress_counts`` (migration 0008), by triggers on ``assignments`` that run in the writer's
transaction, whatever wrote the row (ORM, Core bulk statements, COPY, the cascades from
``rounds`` and ``keluarga``). SQLite: row triggers; decrements are plain UPDATEs (a missing row
stays missing). PostgreSQL: statement-level triggers with transition tables for INSERT, UPDATE
and DELETE, one aggregated upsert per statement in key order, so that concurrent writers lock
counter rows in the same order. An update moves the row's counts when its status, enumerator
(reassignment) or round changes. The existing assignments are counted in the migration, so an
upgrade starts consistent.

The same page lists a kelurahan's first families by RW, RT and id: the partial index
``ix_keluarga_kelurahan_rw_rt`` (families not removed) lets the database walk them in order and
stop after a page, instead of joining and sorting every family of the kelurahan (17,000 in the
benchmark). A plain CREATE INDEX: a batch rebuild of ``keluarga`` would drop its triggers.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

FAMILIES_WHERE = "removed_at IS NULL"
UPSERT = ("ON CONFLICT (round_id, enumerator_id, metric) DO UPDATE "
          "SET n = enumerator_load.n + excluded.n")

# --- SQLite ------------------------------------------------------------------------------


def _sqlite_add(r):
    # The WHERE clause is needed: an upsert after INSERT ... SELECT ... FROM must not be read
    # as a join's ON.
    return (f"INSERT INTO enumerator_load (round_id, enumerator_id, metric, n) "
            f"SELECT {r}.round_id, {r}.enumerator_id, m.metric, 1 FROM "
            f"(SELECT 'assigned' AS metric UNION ALL SELECT {r}.status) m "
            f"WHERE m.metric IS NOT NULL {UPSERT};")


def _sqlite_sub(r):
    return (f"UPDATE enumerator_load SET n = n - 1 WHERE round_id = {r}.round_id "
            f"AND enumerator_id = {r}.enumerator_id AND metric IN ('assigned', {r}.status);")


_CHANGED = ("OLD.status IS NOT NEW.status OR OLD.enumerator_id IS NOT NEW.enumerator_id "
            "OR OLD.round_id IS NOT NEW.round_id")

SQLITE_TRIGGERS = {
    "enumerator_load_ins": ("AFTER INSERT ON assignments", _sqlite_add("NEW")),
    "enumerator_load_del": ("AFTER DELETE ON assignments", _sqlite_sub("OLD")),
    "enumerator_load_upd": (f"AFTER UPDATE ON assignments WHEN {_CHANGED}",
                            _sqlite_sub("OLD") + " " + _sqlite_add("NEW")),
}

# --- PostgreSQL --------------------------------------------------------------------------


def _pg_apply(deltas: str) -> str:
    """Upsert ``deltas`` (round_id, enumerator_id, metric, n) summed per key, in key order."""
    return (f"INSERT INTO enumerator_load AS e (round_id, enumerator_id, metric, n) "
            f"SELECT round_id, enumerator_id, metric, sum(n) FROM ({deltas}) d "
            f"GROUP BY round_id, enumerator_id, metric HAVING sum(n) <> 0 "
            f"ORDER BY round_id, enumerator_id, metric "
            f"ON CONFLICT (round_id, enumerator_id, metric) DO UPDATE SET n = e.n + excluded.n")


def _pg_rows(table: str, sign: int) -> str:
    return (f"SELECT a.round_id, a.enumerator_id, m.metric, {sign} AS n FROM {table} a "
            f"CROSS JOIN LATERAL (VALUES ('assigned'), (a.status)) AS m(metric) "
            f"WHERE m.metric IS NOT NULL")


PG_FUNCTION = f"""
CREATE FUNCTION enumerator_load_assignments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_pg_apply(_pg_rows('new_rows', 1))};
  ELSIF TG_OP = 'DELETE' THEN
    {_pg_apply(_pg_rows('old_rows', -1))};
  ELSE
    {_pg_apply(_pg_rows('new_rows', 1) + ' UNION ALL ' + _pg_rows('old_rows', -1))};
  END IF;
  RETURN NULL;
END $$;"""

PG_TRIGGERS = {
    "enumerator_load_ins": "AFTER INSERT ON assignments REFERENCING NEW TABLE AS new_rows",
    "enumerator_load_del": "AFTER DELETE ON assignments REFERENCING OLD TABLE AS old_rows",
    "enumerator_load_upd": ("AFTER UPDATE ON assignments REFERENCING OLD TABLE AS old_rows "
                            "NEW TABLE AS new_rows"),
}


def _fill():
    """Count what is already there, so an upgrade of a live database starts consistent."""
    for column, group in (("'assigned'", ""), ("status", ", status")):
        op.execute("INSERT INTO enumerator_load (round_id, enumerator_id, metric, n) "
                   f"SELECT round_id, enumerator_id, {column}, count(*) FROM assignments "
                   f"GROUP BY round_id, enumerator_id{group}")


def upgrade():
    op.create_table('enumerator_load',
    sa.Column('round_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('enumerator_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('round_id', 'enumerator_id', 'metric',
                            name=op.f('pk_enumerator_load'))
    )
    _fill()
    op.create_index('ix_keluarga_kelurahan_rw_rt', 'keluarga',
                    ['kode_kelurahan', 'rw', 'rt', 'id'], unique=False,
                    sqlite_where=sa.text(FAMILIES_WHERE), postgresql_where=sa.text(FAMILIES_WHERE))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for name, when in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION enumerator_load_assignments()")
    else:
        for name, (when, body) in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON assignments")
        op.execute("DROP FUNCTION IF EXISTS enumerator_load_assignments()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index('ix_keluarga_kelurahan_rw_rt', table_name='keluarga')
    op.drop_table('enumerator_load')
