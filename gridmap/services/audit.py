"""The audit trail: who changed what, when, from which value to which.

Row changes are written by the database itself (triggers of migration 0007 on the main tables),
naming the actor the services put in ``gridmap.actor`` for the transaction (:func:`set_actor`);
a write made outside the app is logged as ``db:<role>``. Events that are not row changes
(log-in, reveal of a masked value, export, bulk load) are written here with :func:`record`.

``audit_log`` is append-only: the database refuses UPDATE, DELETE and TRUNCATE on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.domain import access as rules

# Events written by the services (row changes are INSERT, UPDATE, DELETE, TRUNCATE).
EVENTS = ("LOGIN", "LOGIN_FAILED", "LOGOUT", "REVEAL", "EXPORT", "BULK_LOAD")
ROW_ACTIONS = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")
ACTIONS = ROW_ACTIONS + EVENTS


def _who(principal_or_name) -> tuple[str, str | None]:
    if principal_or_name is None:
        return "", None
    if isinstance(principal_or_name, str):
        return principal_or_name, None
    return principal_or_name.actor, principal_or_name.role


def set_actor(session: Session, principal_or_name, role: str | None = None) -> None:
    """Name the user behind every write of the current transaction (``SET LOCAL gridmap.actor``)."""
    actor, actor_role = _who(principal_or_name)
    session.execute(
        text("SELECT set_config('gridmap.actor', :actor, true), set_config('gridmap.actor_role', :role, true)"),
        {"actor": actor[:64], "role": (role or actor_role or "")[:32]},
    )


def suspend_for_bulk_load(session: Session) -> None:
    """No row-by-row audit for the rest of this transaction (loading a whole district).

    Only for the initial load of a district, which :func:`record` then logs as one BULK_LOAD row;
    the setting is local to the transaction and ends with it.
    """
    session.execute(text("SELECT set_config('gridmap.audit_off', 'on', true)"))


def record(
    session: Session,
    principal_or_name,
    action: str,
    table_name: str,
    row_id: int | None = None,
    *,
    detail: dict | None = None,
    before: dict | None = None,
    after: dict | None = None,
    role: str | None = None,
) -> None:
    """Write one event to the audit trail (in the caller's transaction)."""
    actor, actor_role = _who(principal_or_name)
    actor_role = role or actor_role
    session.execute(
        text(
            "INSERT INTO audit_log (actor, actor_role, action, table_name, row_id, before, after, detail) "
            "VALUES (coalesce(nullif(:actor, ''), gridmap_audit_actor()), :role, :action, :table, :row_id, "
            "CAST(:before AS jsonb), CAST(:after AS jsonb), CAST(:detail AS jsonb))"
        ),
        {
            "actor": actor[:64], "role": actor_role, "action": action, "table": table_name, "row_id": row_id,
            "before": _json(before), "after": _json(after), "detail": _json(detail),
        },
    )


def _json(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


_COLUMNS = "id, at, actor, actor_role, db_user, action, table_name, row_id, before, after, detail"


def latest_change(session: Session, table_name: str, row_id: int) -> dict | None:
    """The newest INSERT or UPDATE of a row: who, when, and the values it set."""
    row = session.execute(
        text(
            f"SELECT {_COLUMNS} FROM audit_log WHERE table_name = :t AND row_id = :id "
            "AND action IN ('INSERT', 'UPDATE') ORDER BY id DESC LIMIT 1"
        ),
        {"t": table_name, "id": row_id},
    ).mappings().one_or_none()
    return dict(row) if row else None


@dataclass
class AuditFilter:
    actor: str = ""
    action: str = ""
    table_name: str = ""
    row_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class AuditPage:
    total: int
    rows: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"total": self.total, "rows": self.rows}


def _short(value: Any) -> str:
    if isinstance(value, dict) and "coordinates" in value:
        return f"({value.get('type', 'geometry')})"
    text_ = json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, dict | list) else str(value)
    return text_ if len(text_) <= 60 else text_[:57] + "…"


def summarise(entry: dict) -> str:
    """One line saying what an entry changed: 'phone: 138****1234 → 139****0000; note: …'."""
    before, after = entry.get("before") or {}, entry.get("after") or {}
    if entry["action"] == "UPDATE":
        return "; ".join(
            f"{k}: {_short(before.get(k))} → {_short(after.get(k))}" for k in sorted(set(before) | set(after))
        )
    if entry["action"] in ("INSERT", "DELETE"):
        values = after or before
        name = values.get("name") or values.get("title") or values.get("username") or ""
        return f"{len(values)} fields" + (f" · {_short(name)}" if name else "")
    if entry.get("detail"):
        return "; ".join(f"{k}: {_short(v)}" for k, v in entry["detail"].items())
    return ""


def search(
    session: Session, principal, filters: AuditFilter | None = None, *, limit: int = 200, offset: int = 0
) -> AuditPage:
    """Entries matching ``filters``, newest first; only for principals who may view the audit trail.

    Personal values in the stored rows are masked for every principal (an auditor checks who did
    what, not whom it was about); the operator at the shell (``principal=None``) sees them in clear.
    """
    from gridmap.services.access import require

    require(principal, rules.VIEW_AUDIT)
    f = filters or AuditFilter()
    where = ["true"]
    params: dict[str, Any] = {}
    if f.actor.strip():
        where.append("actor ILIKE :actor")
        params["actor"] = "%" + f.actor.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if f.action:
        where.append("action = :action")
        params["action"] = f.action
    if f.table_name:
        where.append("table_name = :table")
        params["table"] = f.table_name
    if f.row_id is not None:
        where.append("row_id = :row_id")
        params["row_id"] = f.row_id
    if f.since is not None:
        where.append("at >= :since")
        params["since"] = f.since
    if f.until is not None:
        where.append("at < :until")
        params["until"] = f.until
    clause = " AND ".join(where)  # fixed fragments; every value is a bound parameter
    total = session.execute(text(f"SELECT count(*) FROM audit_log WHERE {clause}"), params).scalar_one()
    rows = session.execute(
        text(f"SELECT {_COLUMNS} FROM audit_log WHERE {clause} ORDER BY id DESC LIMIT :limit OFFSET :offset"),
        {**params, "limit": max(1, min(limit, 1000)), "offset": max(0, offset)},
    ).mappings().all()
    out = []
    for r in rows:
        d = dict(r)
        if principal is not None:
            d["before"] = rules.mask_json_fields(d["table_name"], d["before"])
            d["after"] = rules.mask_json_fields(d["table_name"], d["after"])
        d["summary"] = summarise(d)
        out.append(d)
    return AuditPage(total=total, rows=out)


def tables_in_log(session: Session) -> list[str]:
    return list(session.execute(text("SELECT DISTINCT table_name FROM audit_log ORDER BY 1")).scalars())
