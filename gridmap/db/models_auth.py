"""Users, their sessions and the audit trail (issue 7): the tables of migration 0007.

A user is bound to one area of the hierarchy by (``area_level``, ``area_id``) rather than by a
foreign key per level: reloading the demo district truncates the district's tables with CASCADE,
which must not take the users with it. The services check that the area exists when a user is
made.

Sessions live in PostgreSQL, not in a worker's memory, so any gunicorn worker serves any request;
the browser holds a random token in a signed cookie and the table keeps only its SHA-256.

``audit_log`` is append-only: triggers raise on UPDATE, DELETE and TRUNCATE and the privileges are
revoked (migration 0007). Rows are written by the triggers on the main tables and by the services
for events that are not row changes (log-in, reveal, export, bulk load).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.db.models import Base


class AppUser(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(Text)
    # district_commander, subdistrict_staff, community_worker, grid_leader, volunteer, auditor
    role: Mapped[str] = mapped_column(String(32))
    # 'district', 'subdistrict', 'community' or 'grid', and the id of that row.
    area_level: Mapped[str] = mapped_column(String(16))
    area_id: Mapped[int] = mapped_column(Integer)
    # The PostgreSQL login role of this user, when they may connect to the database directly.
    db_role: Mapped[str | None] = mapped_column(String(63), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            "role IN ('district_commander', 'subdistrict_staff', 'community_worker', 'grid_leader',"
            " 'volunteer', 'auditor')",
            name="app_user_role",
        ),
        CheckConstraint("area_level IN ('district', 'subdistrict', 'community', 'grid')", name="app_user_area_level"),
    )


class UserSession(Base):
    __tablename__ = "user_session"
    # SHA-256 (hex) of the token in the browser's cookie; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    txid: Mapped[int] = mapped_column(BigInteger, server_default=func.txid_current())
    # The app user (``SET LOCAL gridmap.actor``), or 'db:<role>' for a change made outside the app.
    actor: Mapped[str] = mapped_column(String(64), index=True)
    actor_role: Mapped[str | None] = mapped_column(String(32))
    db_user: Mapped[str] = mapped_column(String(63), server_default=func.current_user())
    # INSERT, UPDATE, DELETE, TRUNCATE (row triggers) or LOGIN, LOGIN_FAILED, LOGOUT, REVEAL,
    # EXPORT, BULK_LOAD (the services).
    action: Mapped[str] = mapped_column(String(16), index=True)
    table_name: Mapped[str] = mapped_column(String(63), index=True)
    row_id: Mapped[int | None] = mapped_column(BigInteger)
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    detail: Mapped[dict | None] = mapped_column(JSONB)
