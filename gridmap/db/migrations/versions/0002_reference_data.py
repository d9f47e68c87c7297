"""reference data: key-person categories and risk classes from the policy texts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from gridmap.domain.reference import KEY_PERSON_CATEGORIES, RISK_CLASSES

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    for order, cat in enumerate(KEY_PERSON_CATEGORIES):
        conn.execute(
            sa.text(
                "INSERT INTO key_person_category (code, name_zh, name_en, vulnerable, is_case, sort_order)"
                " VALUES (:code, :zh, :en, :vul, :case, :ord) ON CONFLICT (code) DO NOTHING"
            ),
            {"code": cat.code, "zh": cat.name_zh, "en": cat.name_en, "vul": cat.vulnerable,
             "case": cat.is_case, "ord": order},
        )
    for rc in RISK_CLASSES:
        conn.execute(
            sa.text(
                "INSERT INTO risk_class (scheme, code, name_zh, name_en, color, severity, measures_zh, measures_en)"
                " VALUES (:scheme, :code, :zh, :en, :color, :sev, :mzh, :men)"
                " ON CONFLICT (scheme, code) DO NOTHING"
            ),
            {"scheme": rc.scheme, "code": rc.code, "zh": rc.name_zh, "en": rc.name_en, "color": rc.color,
             "sev": rc.severity, "mzh": rc.measures_zh, "men": rc.measures_en},
        )


def downgrade() -> None:
    op.execute("DELETE FROM key_person_category")
    op.execute("DELETE FROM risk_class")
