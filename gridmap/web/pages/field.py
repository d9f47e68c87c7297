"""The field screen (path "/field"): a staff member's task items on a tablet or a phone.

Items of open tasks inside the user's area, by due time: take one (a lock that runs out, shown with
its time), then mark it done or failed (with a note), or give it back. When someone else holds an
item the card says who and until when ("由 张三 锁定至 14:20"). Big touch targets, one column on a
phone, two on a 1024 × 768 tablet.

Who the user works as: ``app_user`` has no link to ``staff`` yet, so services.tasks.acting_staff
matches the logged-in user to a staff member of their role in their area (the grid leader of their
grid for a grid leader, a community worker of their community, a volunteer of their grid), the one
named like the user's display name first. A grid leader therefore sees and works the items of the
tasks in their grid. Users without a match see the items but cannot take them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.domain import access as access_rules
from gridmap.domain.errors import GridmapError
from gridmap.domain.tasks import ItemLocked
from gridmap.services import tasks
from gridmap.services.changes import data_version
from gridmap.web import ids
from gridmap.web import task_components as tc
from gridmap.web.auth import current_principal
from gridmap.web.context import current_settings
from gridmap.web.i18n import normalise, t

dash.register_page(
    __name__,
    path="/field",
    name="Field",
    title="现场任务 · Field",
    nav_key="nav.field",
    order=3,
    roles=tuple(r for r in access_rules.ROLES if access_rules.may(r, access_rules.WORK_TASKS)),
)

# The data version this page last saw; polled from /api/changes (task_components.data_poll).
VERSION = ids.data_version("field")
tc.register_data_poll("field")

# Cards on one screen; more than this is a sign to filter, not to scroll for ever.
LIMIT = 100


def _now() -> datetime:
    return datetime.now(UTC)


def layout(**_query) -> html.Div:
    settings = current_settings()
    lang = normalise(settings.default_language)
    principal = current_principal()
    if principal is None or not principal.may(access_rules.WORK_TASKS):
        return html.Div(tc.bi("field.forbidden"), id="field-forbidden", className="gm-error")
    try:
        with session_scope(settings.database_url) as session:
            me = tasks.acting_staff(session, principal)
            version = data_version(session).version
    except DatabaseUnavailable as exc:
        return html.Div([html.B(t("tasks.db", lang)), html.Div(str(exc))], className="gm-error")
    scopes = [{"label": html.Span(tc.bi(f"field.scope.{s}"), className="gm-fd-scope"), "value": s}
              for s in tasks.FIELD_SCOPES]
    return html.Div(
        [
            html.Div(
                [
                    html.Div([html.H2(tc.bi("field.title"), className="gm-fd-title"),
                              html.Div(tc.acting_as(me, principal, lang), id=ids.FIELD_WHO, className="gm-fd-who")],
                             className="gm-fd-head-text"),
                    dcc.RadioItems(id=ids.FIELD_SCOPE, options=scopes, value="todo",
                                   className="gm-fd-scopes", inputClassName="gm-ae-tool-input"),
                ],
                className="gm-fd-head",
            ),
            html.Div(id=ids.FIELD_MESSAGE, className="gm-fd-message", role="status"),
            html.Div(id=ids.FIELD_LIST, className="gm-fd-list"),
            dcc.Store(id=ids.FIELD_REFRESH, data=0),
            *tc.data_poll("field", version),
        ],
        className="gm-fd-page",
    )


@dash.callback(
    Output(ids.FIELD_LIST, "children"),
    Output(ids.FIELD_WHO, "children"),
    Input(ids.FIELD_SCOPE, "value"),
    Input(VERSION, "data"),
    Input(ids.FIELD_REFRESH, "data"),
    Input(ids.LANG_STORE, "data"),
)
def show_items(scope: str | None, _version, _refresh, lang: str | None):
    lang = normalise(lang)
    settings = current_settings()
    principal = current_principal()
    try:
        with session_scope(settings.database_url) as session:
            me = tasks.acting_staff(session, principal)
            items, total = tasks.field_items(session, principal, _now(), staff_id=me.id if me else None,
                                             scope=scope or "todo", limit=LIMIT)
    except DatabaseUnavailable as exc:
        return tc.problem(t("tasks.db", lang), str(exc)), no_update
    except GridmapError as exc:
        return tc.problem(t("tasks.cannot_open", lang), exc.message), no_update
    who = tc.acting_as(me, principal, lang)
    if not items:
        hint = t(f"field.empty.{scope or 'todo'}", lang)
        return tc.empty(t("field.empty_title", lang), hint, "done"), who
    cards = [tc.field_card(i, me.id if me else None, lang, settings.timezone) for i in items]
    head = html.Div(tc.tr("field.count", lang, shown=len(items), total=tc.num(total)), className="gm-fd-count",
                    **{"data-total": str(total)})
    return [head, html.Div(cards, className="gm-fd-cards")], who


def _locked_message(exc: ItemLocked, lang: str, timezone: str) -> html.Div:
    text = tc.tr("field.locked_until", lang, name=exc.holder_name or "?", until=tc.local(exc.locked_until, timezone, "%H:%M"))
    return tc.problem(t("field.not_yours", lang), text, "warning")


@dash.callback(
    Output(ids.FIELD_MESSAGE, "children"),
    Output(ids.FIELD_REFRESH, "data"),
    Output(VERSION, "data", allow_duplicate=True),
    Input({"type": ids.FIELD_ACTION, "item": ALL, "action": ALL}, "n_clicks"),
    State({"type": ids.FIELD_NOTE, "item": ALL}, "value"),
    State({"type": ids.FIELD_NOTE, "item": ALL}, "id"),
    State(ids.FIELD_REFRESH, "data"),
    State(VERSION, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def act(_clicks, notes, note_ids, refresh, version, lang):
    """Take, finish (done / failed) or give back one item, as the staff member the user works as.

    After a write the list is redrawn once, through the data version this write made (the next
    poll then finds nothing new), so a second tap never lands on a card being replaced.
    """
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not ctx.triggered or not ctx.triggered[0]["value"]:
        raise PreventUpdate  # buttons fire when the cards are (re)drawn, with no click
    lang = normalise(lang)
    item_id, action = trigger["item"], trigger["action"]
    note = next((v or "" for v, i in zip(notes, note_ids, strict=True) if i["item"] == item_id), "")
    settings = current_settings()
    principal = current_principal()
    now = _now()
    try:
        with session_scope(settings.database_url) as session:
            me = tasks.acting_staff(session, principal)
            if me is None:
                return tc.problem(t("tasks.not_done", lang), t("field.no_staff_short", lang)), no_update, no_update
            if action == "take":
                item = tasks.take_item(session, item_id, me.id, now, settings, principal=principal)
            elif action == "release":
                item = tasks.release_item(session, item_id, me.id, now, principal=principal)
            elif action in ("done", "failed"):
                item = tasks.finish_item(session, item_id, me.id, outcome=action, note=note, now=now,
                                         principal=principal)
            else:
                raise PreventUpdate
        new_version = data_version(session).version
    except ItemLocked as exc:  # show the holder's lock on the card too
        return _locked_message(exc, lang, settings.timezone), (refresh or 0) + 1, no_update
    except DatabaseUnavailable as exc:
        return tc.problem(t("tasks.db", lang), str(exc)), no_update, no_update
    except GridmapError as exc:
        return tc.problem(t("tasks.not_done", lang), exc.message), (refresh or 0) + 1, no_update
    place = tc.place(item)
    if action == "take":
        text = tc.tr("field.taken_msg", lang, place=place, until=tc.local(item.locked_until, settings.timezone, "%H:%M"))
    else:
        text = tc.tr(f"field.{action}_msg", lang, place=place)
    return tc.problem(text, "", "success"), no_update, tc.bumped(version, new_version)
