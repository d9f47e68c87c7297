"""key persons counted per building and category, kept by triggers

The impact of a drawn area needs key persons by category and the buildings with cases. Joining
household → key_person → category link for every household inside costs tens of milliseconds for
a sub-district and about a second for a city district; summing a few rows per building costs
almost nothing. So:

- ``key_person_category_link.building_id`` names the building of the person's household; a
  BEFORE INSERT trigger fills it when the writer did not, and moves of a person to another
  household, or of a household to another building, carry it along;
- ``building_key_count (building_id, category_id, n)`` is kept from the links by statement-level
  triggers with transition tables (one grouped upsert per statement, so COPY stays fast).

Because the link row carries its building, a cascade (deleting a household deletes its key
persons, which deletes their links) still finds the counts to lower.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FUNCTIONS = """
CREATE FUNCTION gridmap_link_building() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.building_id IS NULL THEN
    SELECT h.building_id INTO NEW.building_id
    FROM key_person kp JOIN household h ON h.id = kp.household_id WHERE kp.id = NEW.key_person_id;
  END IF;
  RETURN NEW;
END $$;

CREATE FUNCTION gridmap_key_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE building_key_count k SET n = k.n - d.n
    FROM (SELECT building_id, category_id, count(*) AS n FROM old_rows GROUP BY 1, 2) d
    WHERE k.building_id = d.building_id AND k.category_id = d.category_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO building_key_count AS k (building_id, category_id, n)
    SELECT building_id, category_id, count(*) FROM new_rows GROUP BY 1, 2
    ON CONFLICT (building_id, category_id) DO UPDATE SET n = k.n + EXCLUDED.n;
  END IF;
  DELETE FROM building_key_count WHERE n = 0;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_person_moves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE key_person_category_link l SET building_id = h.building_id
  FROM new_rows nr JOIN old_rows o ON o.id = nr.id JOIN household h ON h.id = nr.household_id
  WHERE l.key_person_id = nr.id AND nr.household_id IS DISTINCT FROM o.household_id
    AND l.building_id IS DISTINCT FROM h.building_id;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_household_moves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE key_person_category_link l SET building_id = nr.building_id
  FROM new_rows nr JOIN old_rows o ON o.id = nr.id JOIN key_person kp ON kp.household_id = nr.id
  WHERE l.key_person_id = kp.id AND nr.building_id IS DISTINCT FROM o.building_id;
  RETURN NULL;
END $$;
"""

TRIGGERS = (
    "CREATE TRIGGER link_building BEFORE INSERT ON key_person_category_link "
    "FOR EACH ROW EXECUTE FUNCTION gridmap_link_building()",
    "CREATE TRIGGER link_counts_insert AFTER INSERT ON key_person_category_link "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gridmap_key_counts()",
    "CREATE TRIGGER link_counts_update AFTER UPDATE ON key_person_category_link "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gridmap_key_counts()",
    "CREATE TRIGGER link_counts_delete AFTER DELETE ON key_person_category_link "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gridmap_key_counts()",
    "CREATE TRIGGER key_person_moves AFTER UPDATE ON key_person "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gridmap_person_moves()",
    "CREATE TRIGGER household_moves AFTER UPDATE ON household "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gridmap_household_moves()",
)
TRIGGER_TABLES = {
    "link_building": "key_person_category_link",
    "link_counts_insert": "key_person_category_link",
    "link_counts_update": "key_person_category_link",
    "link_counts_delete": "key_person_category_link",
    "key_person_moves": "key_person",
    "household_moves": "household",
}


def upgrade() -> None:
    op.add_column("key_person_category_link", sa.Column("building_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE key_person_category_link l SET building_id = h.building_id "
        "FROM key_person kp JOIN household h ON h.id = kp.household_id WHERE kp.id = l.key_person_id"
    )
    op.alter_column("key_person_category_link", "building_id", nullable=False)
    op.create_foreign_key(
        "key_person_category_link_building_id_fkey", "key_person_category_link", "building",
        ["building_id"], ["id"], ondelete="CASCADE",
    )
    op.create_table(
        "building_key_count",
        sa.Column("building_id", sa.Integer(), sa.ForeignKey("building.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("category_id", sa.Integer(), sa.ForeignKey("key_person_category.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint("n >= 0", name="building_key_count_nonnegative"),
    )
    op.execute(
        "INSERT INTO building_key_count (building_id, category_id, n) "
        "SELECT building_id, category_id, count(*) FROM key_person_category_link GROUP BY 1, 2"
    )
    op.execute(FUNCTIONS)
    for statement in TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    for name, table in TRIGGER_TABLES.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for fn in ("gridmap_link_building", "gridmap_key_counts", "gridmap_person_moves", "gridmap_household_moves"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}()")
    op.drop_table("building_key_count")
    op.drop_constraint("key_person_category_link_building_id_fkey", "key_person_category_link")
    op.drop_column("key_person_category_link", "building_id")
