"""the impact summary kept per community and per grid, repaired from a log of what changed

A commander's 5 km redraw touches ~1,400 grids of ~160 communities; the impact preview (issue 8)
read every one of them: their key counts, case buildings, grid leaders, gates and compounds. Most
of those lie wholly inside such an area, and for them the answer is the same whatever the area:
``community_summary`` and ``grid_summary`` keep it, and the preview reads one row for each
community, or else each grid, that the area covers (gridmap.services.impact).

- A compound belongs to the grid of its community that holds a point on its surface (the lowest
  id, on a shared edge); one that no grid of its community holds is "loose"
  (``community_summary.loose_compounds``). Gates go with their compound.
- ``extent``: the convex hull of the grid, its compounds and their gates; of a community, of the
  community, its grids' extents and its loose compounds and their gates. An area that covers an
  extent covers all of it; an area (grown by the gate distance) that misses it reaches none of it.
  Grids between the two are looked at building by building, their compounds one by one.
- the figures: households, residents, buildings, buildings with a case and their households,
  compounds, gates (open; open and staffed by an active checkpoint), persons per key category
  (``{code: n}``); per grid also its households with key persons and its key persons (the map's
  count per grid while zoomed out, gridmap.services.layers); a grid's card (code, name, leader, totals), a community's cards ordered by code,
  and its grids' compound ids (``grid_summary.compound_ids``), for the grids the area cuts.

The pattern of 0013/0014: nothing adds to or subtracts from a kept figure; statement-level
triggers with transition tables append the communities each statement touched to
``community_summary_dirty``, and the reader recomputes those communities (and their grids) with
the query of the full computation (gridmap.services.kept), so the figures cannot drift:

- community, grid, compound: the community of the old and of the new rows;
- gate, checkpoint: the community of their compound; staff_assignment: of the grid;
  staff (name, phone, role, active): of the grids the person is assigned to;
- grid_key_count (kept from the key persons by 0008/0010: it changes whenever a building's count
  of a category changes, so also when a building gains or loses a case): of its grid;
- key_person (the key households and persons per grid count those without a category too, and a
  person may move to another household of the same building): of its household's grid (a person
  deleted with its household: the building's trigger, whose households changed);
- building, when its households, residents or grid change (household totals move the grid's
  totals too, but a household moved between two buildings of one grid leaves them alone, while
  it can move into or out of a building with a case);
- key_person_category (which ones are cases) and TRUNCATE of any of them: everything.

No state row yet: the first read computes everything (the loaders compute it in their
transaction, gridmap.services.coverage.refresh_kept_figures).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# The communities of rows ``{rows}`` of each table.
_COMMUNITIES_OF = {
    "community": "SELECT r.id FROM {rows} r",
    "grid": "SELECT r.community_id FROM {rows} r",
    "compound": "SELECT r.community_id FROM {rows} r",
    "gate": "SELECT cp.community_id FROM {rows} r JOIN compound cp ON cp.id = r.compound_id",
    "checkpoint": "SELECT cp.community_id FROM {rows} r JOIN gate ga ON ga.id = r.gate_id "
                  "JOIN compound cp ON cp.id = ga.compound_id",
    "staff_assignment": "SELECT g.community_id FROM {rows} r JOIN grid g ON g.id = r.grid_id",
    "staff": "SELECT g.community_id FROM {rows} r JOIN staff_assignment sa ON sa.staff_id = r.id "
             "JOIN grid g ON g.id = sa.grid_id",
    "grid_key_count": "SELECT g.community_id FROM {rows} r JOIN grid g ON g.id = r.grid_id",
    "key_person": "SELECT g.community_id FROM {rows} r JOIN household h ON h.id = r.household_id "
                  "JOIN building b ON b.id = h.building_id JOIN grid g ON g.id = b.grid_id",
}
# Updates of these that leave the figures alone log nothing (the building's: its geometry, name).
_UPDATE_OF = {
    "building": (
        "SELECT g.community_id FROM old_rows o JOIN new_rows nr ON nr.id = o.id "
        "JOIN grid g ON g.id IN (o.grid_id, nr.grid_id) "
        "WHERE (o.households, o.residents, o.grid_id) IS DISTINCT FROM (nr.households, nr.residents, nr.grid_id)"
    ),
    "staff": (
        "SELECT g.community_id FROM old_rows o JOIN new_rows nr ON nr.id = o.id "
        "JOIN staff_assignment sa ON sa.staff_id = nr.id JOIN grid g ON g.id = sa.grid_id "
        "WHERE (o.name, o.phone, o.role, o.active) IS DISTINCT FROM (nr.name, nr.phone, nr.role, nr.active)"
    ),
}
_TRUNCATED = ("community", "grid", "compound", "gate", "checkpoint", "staff_assignment", "staff",
              "grid_key_count", "building_key_count", "building", "household", "key_person",
              "key_person_category_link", "key_person_category")


def _log(select: str) -> str:
    return (f"INSERT INTO community_summary_dirty (community_id) "
            f"SELECT DISTINCT x FROM ({select}) s(x) WHERE x IS NOT NULL;")


def _function(table: str) -> str:
    rows_of = _COMMUNITIES_OF.get(table)
    if table in _UPDATE_OF:
        update = _log(_UPDATE_OF[table])
    else:
        update = _log(f"{rows_of.format(rows='old_rows')} UNION {rows_of.format(rows='new_rows')}")
    branches = []
    for event, body in (("INSERT", _log(rows_of.format(rows="new_rows")) if rows_of else "NULL;"),
                        ("DELETE", _log(rows_of.format(rows="old_rows")) if rows_of else "NULL;"),
                        ("UPDATE", update)):
        verb = "ELSIF" if branches else "IF"
        branches.append(f"  {verb} TG_OP = '{event}' THEN\n    {body}")
    body = "\n".join(branches)
    # SECURITY DEFINER: a role that may write the rows but not the log still leaves its mark.
    return f"""
CREATE FUNCTION gridmap_summary_dirty_{table}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
{body}
  END IF;
  RETURN NULL;
END $$;
"""


EVERYTHING = """
CREATE FUNCTION gridmap_summary_dirty_all() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  INSERT INTO community_summary_dirty (everything) VALUES (true);
  RETURN NULL;
END $$;
"""

_REFS = {"INSERT": "REFERENCING NEW TABLE AS new_rows",
         "DELETE": "REFERENCING OLD TABLE AS old_rows",
         "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"}


def _triggers() -> dict[str, tuple[str, str]]:
    """name: (table, the statement creating it)"""
    out = {}
    for table in (*_COMMUNITIES_OF, "building"):
        events = ("UPDATE",) if table == "building" else ("INSERT", "UPDATE", "DELETE")
        for event in events:
            name, refs = f"{table}_summary_{event.lower()}", _REFS[event]
            out[name] = (table, f"CREATE TRIGGER {name} AFTER {event} ON {table} {refs} "
                                f"FOR EACH STATEMENT EXECUTE FUNCTION gridmap_summary_dirty_{table}()")
    for event in ("INSERT", "UPDATE", "DELETE"):
        name = f"key_person_category_summary_{event.lower()}"
        out[name] = ("key_person_category", f"CREATE TRIGGER {name} AFTER {event} ON key_person_category "
                                            "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_summary_dirty_all()")
    for table in _TRUNCATED:
        name = f"{table}_summary_truncate"
        out[name] = (table, f"CREATE TRIGGER {name} AFTER TRUNCATE ON {table} "
                            "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_summary_dirty_all()")
    return out


TRIGGERS = _triggers()


def _figures() -> list[sa.Column]:
    """The columns both summaries keep, new for each table: the extent and what an area covering
    it finds there."""
    return [
        sa.Column("extent", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
        sa.Column("households", sa.BigInteger(), nullable=False),
        sa.Column("residents", sa.BigInteger(), nullable=False),
        sa.Column("buildings", sa.Integer(), nullable=False),
        sa.Column("case_buildings", sa.Integer(), nullable=False),
        sa.Column("case_households", sa.BigInteger(), nullable=False),
        sa.Column("compounds", sa.Integer(), nullable=False),
        sa.Column("gates", sa.Integer(), nullable=False),
        sa.Column("open_gates", sa.Integer(), nullable=False),
        sa.Column("staffed_gates", sa.Integer(), nullable=False),
        sa.Column("key_counts", postgresql.JSONB(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "community_summary",
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("community.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("grids", sa.Integer(), nullable=False),
        *_figures(),
        sa.Column("grid_cards", postgresql.JSONB(), nullable=False),
        sa.Column("loose_compounds", postgresql.ARRAY(sa.Integer()), nullable=False),
    )
    op.execute("CREATE INDEX ix_community_summary_extent ON community_summary USING gist (extent)")
    op.create_table(
        "grid_summary",
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grid.id", ondelete="CASCADE"), primary_key=True),
        # Recomputed with its community: cleared with the community's row.
        sa.Column("community_id", sa.Integer(),
                  sa.ForeignKey("community_summary.community_id", ondelete="CASCADE"), nullable=False, index=True),
        *_figures(),
        sa.Column("key_households", sa.Integer(), nullable=False),
        sa.Column("key_persons", sa.Integer(), nullable=False),
        sa.Column("card", postgresql.JSONB(), nullable=False),
        sa.Column("compound_ids", postgresql.ARRAY(sa.Integer()), nullable=False),
    )
    op.create_table(
        "community_summary_state",
        sa.Column("id", sa.SmallInteger(), primary_key=True),
        # NULL until the first full computation (the row exists first as the refreshers' lock).
        sa.Column("computed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("id = 1", name="community_summary_state_one_row"),
    )
    op.create_table(
        "community_summary_dirty",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("community_id", sa.Integer()),
        sa.Column("everything", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    for table in (*_COMMUNITIES_OF, "building"):
        op.execute(_function(table))
    op.execute(EVERYTHING)
    for _table, statement in TRIGGERS.values():
        op.execute(statement)


def downgrade() -> None:
    for name, (table, _statement) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for table in (*_COMMUNITIES_OF, "building", "all"):
        op.execute(f"DROP FUNCTION IF EXISTS gridmap_summary_dirty_{table}()")
    op.drop_table("community_summary_dirty")
    op.drop_table("community_summary_state")
    op.drop_table("grid_summary")
    op.drop_table("community_summary")
