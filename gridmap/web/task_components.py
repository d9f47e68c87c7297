"""HTML pieces of the tasking pages (pages/tasks.py, pages/field.py), built from the services' plain
results (services.tasks): progress bars, task cards, the preview of a selection, the items table,
an item's box, the history, and the field cards.

Colours of the item states live in assets/gridmap.css (``gm-tk-state-<state>``), shared by the
progress bars, the badges and the points on the map, so they always agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dash
from dash import Input, Output, State, dcc, html

from gridmap.domain import access as access_rules
from gridmap.domain import tasks as task_rules
from gridmap.web import ids
from gridmap.web.area_components import bi, num, problem, tr
from gridmap.web.i18n import t

# Drawn left to right in a progress bar: finished work first.
STATE_ORDER: tuple[str, ...] = (
    task_rules.VALIDATED, task_rules.DONE, task_rules.FAILED, task_rules.LOCKED, task_rules.INVALIDATED,
    task_rules.OPEN,
)
SELECTION_MODES: tuple[str, ...] = task_rules.SELECTION_KINDS

__all__ = ["bi", "num", "problem", "tr"]  # re-exported for the pages

# How often the tasking, field and reporting screens ask /api/changes whether anything was written.
POLL_MS = 5000


def data_poll(page: str, version: int) -> list:
    """A page's data-version store and the interval that refreshes it (gridmap.changes.poll).

    Callbacks that show data take ``Input(ids.data_version(page), "data")`` and so run again only
    when somebody wrote something; a screen's own write sets the store at once.
    """
    return [dcc.Store(id=ids.data_version(page),
                      data={"url": dash.get_relative_path("/api/changes"), "version": version}),
            dcc.Interval(id=ids.data_poll(page), interval=POLL_MS)]


def register_data_poll(page: str) -> None:
    """The browser-side poll of ``page``'s store; called by the page module itself.

    Page modules run once per app (Dash executes them for each ``create_app``), so each app gets
    its own copy; a callback registered from a plain module would go to the first app made in
    the process only (web/__init__.py, _claim_page_callbacks).
    """
    dash.clientside_callback(
        "function(n, current) { return window.gridmap.changes.poll(n, current); }",
        Output(ids.data_version(page), "data"),
        Input(ids.data_poll(page), "n_intervals"),
        State(ids.data_version(page), "data"),
        prevent_initial_call=True,
    )


def bumped(current: dict | None, version: int) -> dict:
    """The data-version store after this screen's own write (its callbacks refresh now, not at the next poll)."""
    return {**(current or {}), "url": (current or {}).get("url") or dash.get_relative_path("/api/changes"),
            "version": version}



def local(when: datetime | str | None, timezone: str, fmt: str = "%m-%d %H:%M") -> str:
    """A time from the services as local time of the command room."""
    if not when:
        return ""
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError:
            return when[:16].replace("T", " ")
    if when.tzinfo is not None:
        when = when.astimezone(ZoneInfo(timezone))
    return when.strftime(fmt)


def state_name(state: str, lang: str) -> str:
    zh, en = task_rules.STATE_NAMES.get(state, (state, state))
    return en if lang == "en" else zh


def state_badge(state: str, lang: str) -> html.Span:
    return html.Span(state_name(state, lang), className=f"gm-tk-badge gm-tk-state-{state}", **{"data-state": state})


def staff_role_name(role: str, lang: str) -> str:
    key = f"tasks.staff_role.{role}"
    name = t(key, lang)
    return role if name == key else name


def type_name(summary: Any, lang: str) -> str:
    return summary.type_name_en if lang == "en" else summary.type_name_zh


# --- progress --------------------------------------------------------------------------------------


def progress_bar(counts: dict[str, int], lang: str, *, element_id: str | None = None, large: bool = False) -> html.Div:
    """Items by state as one stacked bar, with the counts in words below; data-* carry the numbers."""
    total = sum(counts.values())
    segments = [
        html.Div(className=f"gm-tk-seg gm-tk-state-{s}", style={"width": f"{100 * counts.get(s, 0) / total:.2f}%"},
                 title=f"{state_name(s, lang)} {counts.get(s, 0)}")
        for s in STATE_ORDER if total and counts.get(s)
    ]
    finished = sum(counts.get(s, 0) for s in (task_rules.DONE, task_rules.VALIDATED, task_rules.FAILED))
    share = task_rules.share_finished(counts)
    legend = [
        html.Span([html.I(className=f"gm-tk-dot gm-tk-state-{s}"), f"{state_name(s, lang)} {num(counts.get(s, 0))}"],
                  className="gm-tk-count")
        for s in STATE_ORDER if counts.get(s)
    ]
    data = {f"data-{s}": str(counts.get(s, 0)) for s in task_rules.ITEM_STATES}
    props: dict = {"className": "gm-tk-progress" + (" gm-tk-progress-large" if large else ""),
                   "data-items": str(total), "data-finished": str(finished), **data}
    if element_id:
        props["id"] = element_id
    return html.Div(
        [
            html.Div([html.Span("<1%" if 0 < share < 0.005 else f"{share:.0%}", className="gm-tk-share"),
                      html.Span(tr("tasks.finished_of", lang, done=num(finished), total=num(total)),
                                className="gm-tk-share-text")], className="gm-tk-progress-head"),
            html.Div(segments, className="gm-tk-bar"),
            html.Div(legend, className="gm-tk-counts"),
        ],
        **props,
    )


def state_legend(lang: str) -> html.Div:
    return html.Div(
        [html.Div(t("tasks.legend", lang), className="gm-tk-legend-title")]
        + [html.Div([html.I(className=f"gm-tk-dot gm-tk-state-{s}"), state_name(s, lang)], className="gm-tk-legend-row")
           for s in (task_rules.OPEN, task_rules.LOCKED, task_rules.DONE, task_rules.FAILED, task_rules.VALIDATED,
                     task_rules.INVALIDATED)]
        + [html.Div([html.I(className="gm-tk-dot gm-tk-dot-overdue"), t("tasks.overdue_item", lang)],
                    className="gm-tk-legend-row")],
        className="gm-tk-legend",
    )


# --- the task list ----------------------------------------------------------------------------------


def overdue_alert(items: list, lang: str) -> html.Div | None:
    """The alarm above the list: how many items are past due, in how many tasks."""
    if not items:
        return None
    tasks = len({i.task_id for i in items})
    return html.Div(
        [html.Span("!", className="gm-ae-warn-icon"),
         html.Div([html.Div(tr("tasks.overdue_alert", lang, items=num(len(items)), tasks=num(tasks)),
                            className="gm-tk-alert-title"),
                   html.Div(t("tasks.overdue_hint", lang), className="gm-tk-alert-sub")])],
        className="gm-tk-alert", role="alert", **{"data-items": str(len(items))},
    )


def task_card(summary: Any, lang: str, timezone: str, now: datetime, active: bool = False) -> html.Button:
    due_class = "gm-tk-due" + (" gm-tk-late" if summary.overdue else "")
    tags: list = [html.Span(type_name(summary, lang), className="gm-tk-type")]
    if summary.status != "open":
        tags.append(html.Span(t("tasks.closed", lang), className="gm-ae-tag gm-ae-tag-ended"))
    if summary.overdue:
        tags.append(html.Span(tr("tasks.overdue_n", lang, n=num(summary.overdue)), className="gm-tk-late-tag"))
    return html.Button(
        [
            html.Div(tags, className="gm-tk-card-tags"),
            html.Div(summary.title, className="gm-tk-card-title"),
            html.Div([html.Span(tr("tasks.items_n", lang, n=num(summary.items))),
                      html.Span(tr("tasks.due_at", lang, when=local(summary.due_at, timezone)), className=due_class)],
                     className="gm-tk-card-meta"),
            progress_bar(summary.counts, lang),
        ],
        id={"type": ids.TASK_OPEN, "task": summary.id},
        n_clicks=0,
        className="gm-tk-card" + (" gm-tk-card-active" if active else ""),
        **{"data-task": str(summary.id), "data-items": str(summary.items)},
    )


def task_list(summaries: list, lang: str, timezone: str, now: datetime, current: int | None) -> list:
    if not summaries:
        return [empty(t("tasks.no_tasks", lang), t("tasks.no_tasks_hint", lang), "list")]
    return [task_card(s, lang, timezone, now, s.id == current) for s in summaries]


def empty(title: str, hint: str, icon: str = "list") -> html.Div:
    return html.Div([html.Div(className=f"gm-tk-empty-icon gm-tk-empty-{icon}"),
                     html.Div(title, className="gm-tk-empty-title"), html.Div(hint, className="gm-tk-empty-text")],
                    className="gm-tk-empty")


# --- the selection and its preview ----------------------------------------------------------------


def selection_info(mode: str, selection: dict, grid: Any, lang: str, shapes: int = 0) -> list:
    """What is selected now, in words, for the panel (``shapes``: how many are drawn)."""
    if mode == "drawn_area":
        return [html.Span(tr("tasks.sel.drawn", lang, n=shapes) if shapes else t("tasks.sel.drawn_none", lang))]
    if mode == "controlled_area":
        key = selection.get("area_key")
        return [html.Span(tr("tasks.sel.area", lang, key=key) if key else t("tasks.sel.area_none", lang))]
    if mode == "buildings":
        n = len(selection.get("building_ids") or [])
        return [html.Span(tr("tasks.sel.buildings", lang, n=n) if n else t("tasks.sel.buildings_none", lang))]
    if grid is None:
        return [html.Span(t("tasks.sel.grid_none", lang))]
    parts = [html.B(f"{grid.community_name} · {grid.name}"),
             html.Span(tr("tasks.sel.grid_facts", lang, buildings=num(grid.buildings), households=num(grid.households),
                          persons=num(grid.key_persons)), className="gm-ae-muted")]
    if mode == "key_persons":
        n = len(selection.get("key_person_ids") or [])
        parts.append(html.Span(tr("tasks.sel.persons", lang, n=n), className="gm-tk-sel-count"))
    return parts


def person_options(persons: list[dict], lang: str) -> list[dict]:
    """Checklist options for the key persons of a grid: masked names where the user may not see them."""
    options = []
    for p in persons:
        place = " ".join(x for x in (p.get("building") or "", p.get("room") or "") if x)
        label = html.Span([html.Span(p.get("name") or "—", className="gm-tk-person-name"),
                           html.Span(place, className="gm-tk-person-place")], className="gm-tk-person")
        options.append({"label": label, "value": p["id"]})
    return options


def preview_panel(preview: Any, lang: str) -> html.Div:
    """How many items the selection makes and who would get them (services.tasks.preview_task)."""
    level = t(f"tasks.level.{preview.item_level}", lang)
    stats = html.Div(
        [_stat(preview.items, tr("tasks.items_of", lang, level=level), "gm-tk-stat-main"),
         _stat(preview.buildings, t("tasks.buildings", lang)), _stat(preview.households, t("tasks.households", lang)),
         _stat(preview.grids, t("tasks.grids", lang))],
        className="gm-ae-stats",
    )
    rows = [
        html.Tr([html.Td([html.Div(a.name, className="gm-tk-assignee-name"),
                          html.Div(staff_role_name(a.role, lang) + (f" · {t('tasks.source.nearest', lang)}"
                                                                    if a.source == "nearest" else ""),
                                   className="gm-ae-muted")]),
                 html.Td(a.phone or "", className="gm-tk-phone"),
                 html.Td(num(a.items), className="gm-tk-num")])
        for a in preview.assignees[:12]
    ]
    more = len(preview.assignees) - 12
    if more > 0:
        rows.append(html.Tr(html.Td(tr("tasks.more_assignees", lang, n=more), colSpan=3, className="gm-ae-muted")))
    if preview.unassigned:
        rows.append(html.Tr([html.Td(t("tasks.unassigned", lang), className="gm-ae-bad"), html.Td(""),
                             html.Td(num(preview.unassigned), className="gm-tk-num gm-ae-bad")]))
    table = html.Table(
        [html.Thead(html.Tr([html.Th(t("tasks.assignee", lang)), html.Th(t("tasks.phone", lang)),
                             html.Th(t("tasks.items", lang), className="gm-tk-num")])), html.Tbody(rows)],
        className="gm-tk-table",
    )
    return html.Div(
        [html.Div([html.Span(t("tasks.preview", lang), className="gm-ae-preview-title"),
                   html.Span(t("areas.preview_live", lang), className="gm-ae-live")], className="gm-ae-preview-head"),
         stats,
         html.Div([html.H3(tr("tasks.proposed", lang, n=len(preview.assignees))), table], className="gm-ae-section")],
        className="gm-tk-preview-body", **{"data-items": str(preview.items)},
    )


def _stat(value: Any, label: str, extra: str = "") -> html.Div:
    return html.Div([html.Div(num(value), className="gm-ae-stat-value"), html.Div(label, className="gm-ae-stat-label")],
                    className=f"gm-ae-stat {extra}".strip())


# --- a task in detail -------------------------------------------------------------------------------


def detail_head(summary: Any, lang: str, timezone: str) -> list:
    due_class = "gm-tk-late" if summary.overdue else ""
    facts = [
        (t("tasks.type", lang), type_name(summary, lang)),
        (t("tasks.due", lang), html.Span(local(summary.due_at, timezone, "%Y-%m-%d %H:%M"), className=due_class)),
        (t("tasks.created", lang), f"{summary.created_by} · {local(summary.created_at, timezone, '%Y-%m-%d %H:%M')}"),
        (t("tasks.status", lang), t("tasks.closed", lang) if summary.status != "open" else t("tasks.open", lang)),
    ]
    if summary.overdue:
        facts.append((t("tasks.overdue", lang), html.Span(num(summary.overdue), className="gm-ae-bad")))
    return [
        html.Div(summary.title, className="gm-tk-detail-title"),
        html.Dl([x for k, v in facts for x in (html.Dt(k), html.Dd(v))], className="gm-tk-facts"),
    ]


def place(item: Any) -> str:
    """Where an item is, as staff find it: compound, building, room (望江公寓 1栋 502)."""
    return " ".join(x for x in (getattr(item, "compound_name", None), item.building_name, item.household_room) if x)


def items_table(items: list, lang: str, timezone: str, selected: int | None, limit: int = 300) -> list:
    if not items:
        return [html.Div(t("tasks.no_items", lang), className="gm-ae-muted gm-tk-pad")]
    rows = []
    for i in items[:limit]:
        assignee = i.assigned_name or t("tasks.unassigned_short", lang)
        if i.assignment_source == "manual":
            assignee = f"{assignee} ✎"
        rows.append(html.Tr(
            [html.Td(state_badge(i.effective_state, lang)),
             html.Td(html.Button(place(i), id={"type": ids.TASK_ITEM_PICK, "item": i.id}, n_clicks=0,
                                 className="gm-link gm-tk-item-link")),
             html.Td(assignee, className="gm-tk-assignee" + ("" if i.assigned_name else " gm-ae-bad")),
             html.Td(local(i.due_at, timezone), className="gm-tk-due" + (" gm-tk-late" if i.overdue else ""))],
            className="gm-tk-row" + (" gm-tk-row-selected" if i.id == selected else ""),
            **{"data-item": str(i.id), "data-state": i.effective_state},
        ))
    children: list = [html.Table(
        [html.Thead(html.Tr([html.Th(t("tasks.state", lang)), html.Th(t("tasks.place", lang)),
                             html.Th(t("tasks.assignee", lang)), html.Th(t("tasks.due", lang))])),
         html.Tbody(rows)],
        className="gm-tk-table gm-tk-items-table",
    )]
    if len(items) > limit:
        children.append(html.Div(tr("tasks.first_n", lang, n=limit, total=num(len(items))), className="gm-ae-muted gm-tk-pad"))
    return children


def item_facts(item: Any, lang: str, timezone: str) -> list:
    """The selected item: where, state, who holds it, what was noted."""
    facts: list = [
        (t("tasks.place", lang), place(item)),
        (t("tasks.state", lang), state_badge(item.effective_state, lang)),
        (t("tasks.assignee", lang), " · ".join(x for x in (item.assigned_name, item.assigned_phone) if x)
         or t("tasks.unassigned_short", lang)),
        (t("tasks.due", lang), html.Span(local(item.due_at, timezone, "%Y-%m-%d %H:%M"),
                                         className="gm-tk-late" if item.overdue else "")),
    ]
    if item.effective_state == task_rules.LOCKED and item.locked_by_name:
        facts.append((t("tasks.locked_by", lang), tr("field.locked_until", lang, name=item.locked_by_name,
                                                     until=local(item.locked_until, timezone, "%H:%M"))))
    if item.done_at:
        facts.append((t("tasks.done_at", lang), local(item.done_at, timezone)))
    if item.note:
        facts.append((t("tasks.note", lang), item.note))
    return [html.Div(tr("tasks.item_n", lang, id=item.id), className="gm-card-kind"),
            html.Dl([x for k, v in facts for x in (html.Dt(k), html.Dd(v))], className="gm-tk-facts")]


def staff_options(staff: list, lang: str) -> list[dict]:
    return [{"label": f"{s.name} · {staff_role_name(s.role, lang)}", "value": s.id} for s in staff]


_HISTORY_ACTIONS = ("created", "locked", "released", "done", "failed", "validated", "invalidated", "reassigned",
                    "closed", "items_added")


def history_list(rows: list[dict], items_by_id: dict[int, Any], lang: str, timezone: str, limit: int = 60) -> list:
    if not rows:
        return [html.Div(t("tasks.no_history", lang), className="gm-ae-muted")]
    out = []
    for h in reversed(rows[-limit:]):
        action = h["action"]
        what = t(f"tasks.action.{action}", lang) if action in _HISTORY_ACTIONS else action
        details = h.get("details") or {}
        extra = []
        if h.get("task_item_id"):
            item = items_by_id.get(h["task_item_id"])
            extra.append(place(item) if item else f"#{h['task_item_id']}")
        if action == "reassigned" and details.get("to_name"):
            extra.append(f"→ {details['to_name']}")
        if action == "created" and details.get("items") is not None:
            extra.append(tr("tasks.items_n", lang, n=num(details["items"])))
        if details.get("note"):
            extra.append(f"“{details['note']}”")
        out.append(html.Li(
            [html.Span(local(h["at"], timezone), className="gm-tk-h-when"),
             html.Span(h["actor"], className="gm-tk-h-who"),
             html.Span(what, className=f"gm-tk-h-what gm-tk-h-{action}"),
             html.Span(" ".join(extra), className="gm-tk-h-extra")],
            className="gm-tk-h-row",
        ))
    return [html.Ul(out, className="gm-tk-history")]


# --- the field screen ------------------------------------------------------------------------------


def acting_as(staff: Any, principal: Any, lang: str) -> list:
    if principal is None:
        return []
    role = access_rules.ROLES.get(principal.role, (principal.role, principal.role))[1 if lang == "en" else 0]
    if staff is None:
        return [html.Div(tr("field.no_staff", lang, role=role), className="gm-ae-msg gm-ae-msg-warning")]
    how = t("field.how_name" if staff.how == "name" else "field.how_area", lang)
    return [html.Div([html.Span(t("field.acting_as", lang), className="gm-ae-muted"),
                      html.B(staff.name, className="gm-fd-me"),
                      html.Span(f"{staff_role_name(staff.role, lang)} · {principal.area_name}", className="gm-ae-muted")],
                     className="gm-fd-who-line"),
            html.Div(how, className="gm-ae-note")]


def _action(item_id: int, action: str, label_key: str, lang: str, css: str) -> html.Button:
    return html.Button(t(label_key, lang), id={"type": ids.FIELD_ACTION, "item": item_id, "action": action},
                       n_clicks=0, className=f"gm-fd-btn {css}")


def field_card(item: Any, me: int | None, lang: str, timezone: str) -> html.Div:
    """One item on the tablet: where, when, state, the lock, and the buttons that fit its state."""
    state = item.effective_state
    mine = state == task_rules.LOCKED and item.locked_by == me
    theirs = state == task_rules.LOCKED and item.locked_by != me
    lock_line = None
    if mine:
        lock_line = html.Div(tr("field.you_hold", lang, until=local(item.locked_until, timezone, "%H:%M")),
                             className="gm-fd-lock gm-fd-lock-mine")
    elif theirs:
        lock_line = html.Div(tr("field.locked_until", lang, name=item.locked_by_name or "?",
                                until=local(item.locked_until, timezone, "%H:%M")), className="gm-fd-lock gm-fd-lock-other")
    buttons: list = []
    note = None
    if me is not None and state in (task_rules.OPEN, task_rules.INVALIDATED):
        buttons.append(_action(item.id, "take", "field.take", lang, "gm-fd-btn-primary"))
    elif mine:
        note = dcc.Textarea(id={"type": ids.FIELD_NOTE, "item": item.id}, placeholder=t("field.note_placeholder", lang),
                             className="gm-ae-textarea gm-fd-note", maxLength=500)
        buttons += [_action(item.id, "done", "field.done", lang, "gm-fd-btn-done"),
                    _action(item.id, "failed", "field.failed", lang, "gm-fd-btn-failed"),
                    _action(item.id, "release", "field.release", lang, "gm-fd-btn-plain")]
    elif theirs and me is not None:
        buttons.append(html.Button(t("field.take", lang), disabled=True, className="gm-fd-btn gm-fd-btn-primary",
                                   title=t("field.locked_title", lang)))
    assignee = item.assigned_name or t("tasks.unassigned_short", lang)
    mine_tag = (html.Span(t("field.assigned_to_you", lang), className="gm-fd-tag")
                if me is not None and item.assigned_staff_id == me else None)
    due = html.Span(tr("field.due", lang, when=local(item.due_at, timezone)),
                    className="gm-fd-due" + (" gm-tk-late" if item.overdue else ""))
    return html.Div(
        [
            html.Div([state_badge(state, lang), html.Span(item.task_title, className="gm-fd-task"), mine_tag],
                     className="gm-fd-card-head"),
            html.Div(place(item), className="gm-fd-place"),
            html.Div([due, html.Span(tr("field.assignee", lang, name=assignee), className="gm-ae-muted")],
                     className="gm-fd-meta"),
            lock_line,
            html.Div(tr("field.note_shown", lang, note=item.note), className="gm-fd-note-shown") if item.note else None,
            note,
            html.Div(buttons, className="gm-fd-actions") if buttons else None,
        ],
        className=f"gm-fd-card gm-fd-card-{state}" + (" gm-fd-card-late" if item.overdue else ""),
        **{"data-item": str(item.id), "data-state": state},
    )
