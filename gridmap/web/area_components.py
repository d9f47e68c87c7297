"""HTML pieces of the area editor (pages/areas.py), built from the services' plain dicts: the impact
preview with its warnings, the list of areas, the versions, the comparison and the conflict note."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import html

from gridmap.web import ids
from gridmap.web.i18n import LANGUAGES, t


def tr(key: str, lang: str, /, **values: Any) -> str:
    """``t`` with ``{name}`` placeholders filled in."""
    return t(key, lang).format(**values)


def bi(key: str) -> list:
    """``key`` in every language; the root's ``lang-xx`` class shows one (static labels need no callback)."""
    return [html.Span(t(key, lang), className=f"gm-{lang}") for lang in LANGUAGES]


def num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def local_time(iso: str | None, timezone: str) -> str:
    """An ISO timestamp from the database as local time of the command room, to the minute."""
    if not iso:
        return ""
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso[:16].replace("T", " ")
    if when.tzinfo is not None:
        when = when.astimezone(ZoneInfo(timezone))
    return when.strftime("%Y-%m-%d %H:%M")


def swatch(color: str) -> html.Span:
    return html.Span(className="gm-ae-swatch", style={"background": color})


# --- the form ------------------------------------------------------------------------------------


def class_options(risk_classes: list[dict]) -> list[dict]:
    """RadioItems options: area classes first (sealed, controlled, precaution), then the tiers.

    ``risk_classes`` are rows of ``layers.risk_legend`` in both languages: {"code", "scheme",
    "color", "names": {"zh": ..., "en": ...}}. Labels carry both names; CSS shows one.
    """
    ordered = sorted(risk_classes, key=lambda r: (r["scheme"] != "area", -r["severity"]))
    options = []
    for r in ordered:
        label = html.Span(
            [swatch(r["color"]), *[html.Span(r["names"][lang], className=f"gm-{lang}") for lang in LANGUAGES]],
            className=f"gm-ae-class gm-ae-class-{r['scheme']}",
        )
        options.append({"label": label, "value": r["code"]})
    return options


def area_title(area: dict, lang: str) -> str:
    """An area's name, or "区域 #7" when it has none."""
    return area.get("name") or tr("areas.area_n", lang, key=area["area_key"])


def editing_title(base: dict | None, lang: str) -> list:
    if not base:
        return [html.Span(t("areas.editing_new", lang), className="gm-ae-editing-new")]
    parts: list = [
        html.Span(area_title(base, lang), className="gm-ae-editing-name"),
        html.Span(tr("areas.editing_from", lang, version=base["version"]), className="gm-ae-editing-sub"),
    ]
    if base.get("name"):
        parts.insert(1, html.Span(f"#{base['area_key']}", className="gm-ae-editing-sub"))
    if base.get("ended"):
        parts.append(html.Span(t("areas.ended", lang), className="gm-ae-tag gm-ae-tag-ended"))
    return parts


def area_list(areas: list[dict], open_key: int | None, lang: str) -> list:
    """The current areas as buttons that open them in the editor."""
    if not areas:
        return [html.Div(t("areas.list_empty", lang), className="gm-ae-muted")]
    rows = []
    for a in areas:
        title = area_title(a, lang)
        sub = [a["class_name"], tr("areas.version", lang, n=a["version"])]
        if a.get("households") is not None:
            sub.append(f"{num(a['households'])} {t('areas.households', lang)}")
        rows.append(
            html.Button(
                [swatch(a["color"]),
                 html.Span([html.Span(title, className="gm-ae-area-name"),
                            html.Span(" · ".join(sub), className="gm-ae-area-sub")], className="gm-ae-area-text")],
                id={"type": ids.AREA_OPEN, "key": a["area_key"]},
                n_clicks=0,
                className="gm-ae-area" + (" gm-ae-area-open" if a["area_key"] == open_key else ""),
                title=f"#{a['area_key']}",
            )
        )
    return rows


# --- the preview -----------------------------------------------------------------------------------


def empty_preview(lang: str) -> html.Div:
    return html.Div(
        [html.Div(className="gm-ae-empty-icon"), html.Div(t("areas.empty", lang), className="gm-ae-empty-text")],
        className="gm-ae-empty",
    )


def problem(title: str, message: str, kind: str = "error") -> html.Div:
    """A message box: ``kind`` is error, warning, success or info."""
    children: list = [html.Div(title, className="gm-ae-msg-title")]
    if message:
        children.append(html.Div(message, className="gm-ae-msg-body"))
    return html.Div(children, className=f"gm-ae-msg gm-ae-msg-{kind}", role="alert" if kind == "error" else None)


def _stat(value: Any, label: str, extra: str = "") -> html.Div:
    return html.Div(
        [html.Div(num(value), className="gm-ae-stat-value"), html.Div(label, className="gm-ae-stat-label")],
        className=f"gm-ae-stat {extra}".strip(),
    )


def _warning_numbers(numbers: dict, lang: str) -> list:
    shown = []
    for key, fmt in (("households", "{:,}"), ("case_households", "{:,}"), ("ratio", "{:g}×"),
                     ("threshold", "{:g}×"), ("share", "{:.0%}")):
        if key not in numbers or numbers[key] is None:
            continue
        value = numbers[key]
        text = fmt.format(value)
        if key == "threshold" and "share" in numbers:
            text = f"{value:.0%}"
        shown.append(html.Span([html.Span(t(f"areas.warning.{key}", lang), className="gm-ae-chip-k"),
                                html.Span(text, className="gm-ae-chip-v")], className="gm-ae-chip"))
    return shown


def warnings_block(warnings: list[dict], lang: str) -> html.Div:
    """The proportionality warnings, prominent, each with its numbers."""
    if not warnings:
        return html.Div(t("areas.no_warnings", lang), className="gm-ae-ok")
    items = []
    for w in warnings:
        items.append(
            html.Li(
                [html.Div(w["message_en"] if lang == "en" else w["message_zh"], className="gm-ae-warning-text"),
                 html.Div(_warning_numbers(w.get("numbers") or {}, lang), className="gm-ae-chips")],
                className=f"gm-ae-warning gm-ae-warning-{w['code']}",
                **{"data-code": w["code"]},
            )
        )
    return html.Div(
        [html.Div([html.Span("!", className="gm-ae-warn-icon"), t("areas.warnings", lang)], className="gm-ae-warn-title"),
         html.Ul(items, className="gm-ae-warning-list"),
         html.Div(t("areas.warnings_note", lang), className="gm-ae-warn-note")],
        className="gm-ae-warnings",
        id=ids.AREA_WARNINGS,
    )


def _section(title: str, *children: Any, extra: str = "") -> html.Div:
    return html.Div([html.H3(title), *children], className=f"gm-ae-section {extra}".strip())


def _rows(pairs: list[tuple[str, Any, str]]) -> html.Dl:
    items: list = []
    for label, value, css in pairs:
        items += [html.Dt(label), html.Dd(num(value), className=css)]
    return html.Dl(items, className="gm-ae-facts")


def _needs(d: dict, rules: dict, lang: str) -> html.Div:
    pairs = [
        (t("areas.gates", lang), d["gates"], ""),
        (t("areas.open_gates", lang), d["open_gates"], ""),
        (t("areas.existing_checkpoints", lang), d["existing_checkpoints"], ""),
        (t("areas.checkpoints_needed", lang), d["checkpoints_needed"], "gm-ae-strong"),
        (t("areas.duty_staff", lang), d["duty_staff_needed"], "gm-ae-strong"),
    ]
    if d["drop_zones_needed"] or d["delivery_volunteers_needed"]:  # classes that deliver to every door
        pairs += [(t("areas.drop_zones", lang), d["drop_zones_needed"], "gm-ae-strong"),
                  (t("areas.volunteers", lang), d["delivery_volunteers_needed"], "gm-ae-strong")]
    formula = tr("areas.duty_formula", lang, gates=d["open_gates"] if d["area_class"] != "precaution" else 0,
                 shifts=rules["shifts"], staff=rules["staff"])
    return _section(t("areas.needs", lang), _rows(pairs), html.Div(formula, className="gm-ae-note"))


def _compounds(d: dict, lang: str) -> html.Div:
    cut = d["compounds_cut"]
    children: list = [_rows([(t("areas.compounds", lang), d["compounds"], ""),
                             (t("areas.compounds_cut", lang), cut, "gm-ae-bad" if cut else "")])]
    if cut:
        children.append(html.Div(t("areas.compounds_cut_note", lang), className="gm-ae-note gm-ae-note-warn"))
    cases = _rows([(t("areas.case_buildings", lang), d["case_buildings"], ""),
                   (t("areas.case_households", lang), d["case_households"], "")])
    return _section(t("areas.compounds_section", lang), *children, cases)


def _key_persons(rows: list[dict], lang: str) -> html.Div:
    if not rows:
        return _section(t("areas.key_persons", lang), html.Div(t("areas.no_key_persons", lang), className="gm-ae-muted"))
    top = max(r["count"] for r in rows) or 1
    bars = [
        html.Div(
            [html.Div([html.Div(className="gm-bar-fill" + (" gm-vulnerable" if r["vulnerable"] else ""),
                                style={"width": f"{100 * r['count'] / top:.0f}%"}),
                       html.Span(r["name"], className="gm-bar-text", title=r["name"])], className="gm-bar-label"),
             html.Div(num(r["count"]), className="gm-bar-count")],
            className="gm-bar-row",
        )
        for r in rows
    ]
    return _section(t("areas.key_persons", lang), html.Div(bars, className="gm-bars"))


def _grids(grids: list[dict], lang: str) -> html.Div:
    rows = []
    for g in grids:
        leader = (
            html.Span([html.Span(g["leader"], className="gm-person-name"), " ",
                       html.Span(g.get("leader_phone") or "", className="gm-person-phone")])
            if g.get("leader") else html.Span(t("areas.no_leader", lang), className="gm-ae-bad")
        )
        rows.append(
            html.Tr([html.Td([html.Div(g["name"], className="gm-ae-grid-name"),
                              html.Div(tr("areas.grid_inside", lang, buildings=g["buildings"],
                                          households=num(g["households"])), className="gm-ae-muted")]),
                     html.Td(leader, className="gm-ae-grid-leader")])
        )
    return _section(f"{t('areas.grids', lang)} · {len(grids)}", html.Table(html.Tbody(rows), className="gm-ae-table"))


def _communities(communities: list[dict], lang: str) -> html.Div:
    rows = []
    for c in communities:
        share = c["share"]
        rows.append(
            html.Div(
                [html.Div([html.Div(className="gm-bar-fill" + (" gm-ae-fill-high" if share >= 0.5 else ""),
                                    style={"width": f"{100 * min(share, 1):.0f}%"}),
                           html.Span(c["name"], className="gm-bar-text")], className="gm-bar-label"),
                 html.Div(f"{share:.0%}", className="gm-bar-count",
                          title=f"{num(c['households_inside'])} / {num(c['households_total'])}")],
                className="gm-bar-row",
            )
        )
    return _section(t("areas.communities", lang), html.Div(rows, className="gm-bars"))


def _overlaps(overlaps: list[dict], lang: str) -> html.Div:
    if not overlaps:
        return _section(t("areas.overlaps", lang), html.Div(t("areas.no_overlaps", lang), className="gm-ae-muted"))
    items = [
        html.Li(f"#{o['area_key']} {o.get('name') or ''} · {o['name_en'] if lang == 'en' else o['name_zh']} · "
                f"{tr('areas.version', lang, n=o['version'])}")
        for o in overlaps
    ]
    return _section(t("areas.overlaps", lang), html.Ul(items, className="gm-ae-overlaps"), extra="gm-ae-section-warn")


def preview_panel(d: dict, rules: dict, lang: str, seq: int | None = None) -> html.Div:
    """The live impact of the drawing (``services.area_editing.preview``): warnings first.

    ``seq`` is the drawing's number from the editor (assets/gridmap.js): which drawing the numbers are of.
    """
    head = html.Div(
        [html.Span(t("areas.preview", lang), className="gm-ae-preview-title"),
         html.Span(t("areas.preview_live", lang), className="gm-ae-live")],
        className="gm-ae-preview-head",
    )
    stats = html.Div(
        [_stat(d["buildings"], t("areas.buildings", lang)), _stat(d["households"], t("areas.households", lang)),
         _stat(d["residents"], t("areas.residents", lang)), _stat(round(d["area_m2"] / 10_000, 2), t("areas.size", lang))],
        className="gm-ae-stats",
        id=ids.AREA_STATS,
        **{"data-buildings": str(d["buildings"]), "data-households": str(d["households"]), "data-seq": str(seq or 0)},
    )
    return html.Div(
        [
            head,
            warnings_block(d["warnings"], lang),
            stats,
            _needs(d, rules, lang),
            _compounds(d, lang),
            _key_persons(d.get("key_person_rows") or [], lang),
            _grids(d["grids"], lang) if d["grids"] else None,
            _communities(d["communities"], lang) if d["communities"] else None,
            _overlaps(d["overlaps"], lang),
            html.Div(t("panel.privacy", lang), className="gm-privacy"),
        ],
        className="gm-ae-preview",
    )


# --- versions, comparison, conflict --------------------------------------------------------------------


def versions_list(versions: list[dict], lang: str, timezone: str) -> list:
    """Every version, newest first, each with who, when, class and why; older ones can be restored."""
    if not versions:
        return [html.Div(t("areas.no_versions", lang), className="gm-ae-muted")]
    latest = versions[-1]
    can_revert = latest.get("ended_at") is None
    items = []
    for v in reversed(versions):
        is_latest = v["version"] == latest["version"]
        badges: list = [html.Span(tr("areas.version", lang, n=v["version"]), className="gm-ae-vnum")]
        if is_latest:
            badges.append(html.Span(t("areas.current", lang), className="gm-ae-tag"))
        if v.get("ended_at"):
            badges.append(html.Span(t("areas.ended", lang), className="gm-ae-tag gm-ae-tag-ended"))
        body: list = [
            html.Div([*badges, html.Span([swatch(v["color"]), v["class_name"]], className="gm-ae-vclass")],
                     className="gm-ae-vhead"),
            html.Div(f"{v['author']} · {local_time(v['created_at'], timezone)}", className="gm-ae-vmeta"),
        ]
        reason = v.get("end_reason") if v.get("ended_at") else v.get("reason")
        if reason:
            body.append(html.Div(reason, className="gm-ae-vreason"))
        if not is_latest and can_revert:
            body.append(html.Button(t("areas.revert", lang), id={"type": ids.AREA_REVERT, "version": v["version"]},
                                    n_clicks=0, className="gm-ae-btn gm-ae-btn-small"))
        items.append(html.Li(body, className="gm-ae-version" + (" gm-ae-version-latest" if is_latest else ""),
                             style={"--gm-dot": v["color"]}))
    return [html.Ul(items, className="gm-ae-versions")]


def version_options(versions: list[dict], lang: str) -> list[dict]:
    return [{"label": tr("areas.version", lang, n=v["version"]), "value": v["version"]} for v in versions]


def compare_features(diff: dict) -> dict:
    """The comparison (``services.areas.compare_versions``) as one FeatureCollection for the map."""
    features = [
        {"type": "Feature", "properties": {"kind": kind}, "geometry": geometry}
        for kind, geometry in (("old", diff["old"]["geometry"]), ("new", diff["new"]["geometry"]),
                               ("added", diff["added"]), ("released", diff["released"]))
        if geometry and geometry.get("coordinates")
    ]
    return {"type": "FeatureCollection", "features": features}


def compare_summary(diff: dict, lang: str) -> html.Div:
    def row(kind: str, m2: float) -> html.Div:
        return html.Div([html.Span(className=f"gm-ae-key gm-ae-key-{kind}"), html.Span(t(f"areas.{kind}", lang)),
                         html.Span(f"{m2:,.0f} {t('areas.m2', lang)}", className="gm-ae-m2")], className="gm-ae-cmp-row")

    title = (f"{tr('areas.version', lang, n=diff['old']['version'])} → "
             f"{tr('areas.version', lang, n=diff['new']['version'])}")
    return html.Div([html.Div(title, className="gm-ae-cmp-title"), row("added", diff["added_m2"]),
                     row("released", diff["released_m2"])], className="gm-ae-cmp")


def conflict_text(current: dict, base_version: int | None, class_names: dict[str, str], lang: str,
                  timezone: str) -> list:
    """Who saved what while the user edited: their version, time, class and reason."""
    body = tr(
        "areas.conflict_body", lang, author=current.get("author") or "?",
        time=local_time(current.get("created_at"), timezone), version=current.get("version"),
        cls=class_names.get(current.get("class_code"), current.get("class_code")), base=base_version,
    )
    children: list = [html.Div(t("areas.conflict_title", lang), className="gm-ae-msg-title"),
                      html.Div(body, className="gm-ae-msg-body")]
    if current.get("reason"):
        children.append(html.Div([html.B(f"{t('areas.conflict_reason', lang)}："), current["reason"]],
                                 className="gm-ae-msg-body"))
    children.append(html.Div([html.Span(className="gm-ae-key gm-ae-key-theirs"), t("areas.conflict_map", lang)],
                             className="gm-ae-msg-body gm-ae-cmp-row"))
    return children


def conflict_features(current: dict) -> dict:
    geometry = current.get("geometry")
    features = [{"type": "Feature", "properties": {"kind": "theirs"}, "geometry": geometry}] if geometry else []
    return {"type": "FeatureCollection", "features": features}


def save_hint(status: str, lang: str, **values: Any) -> html.Span:
    css = "gm-ae-hint-ok" if status in ("hint_new", "hint_next") else "gm-ae-hint-block"
    return html.Span(tr(f"areas.{status}", lang, **values), className=f"gm-ae-hint {css}")
