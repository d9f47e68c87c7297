"""The app shell: header (product name, navigation, demo-data note, language switch) around the pages."""

from __future__ import annotations

import dash
from dash import Dash, Input, Output, ctx, dcc, html
from dash.exceptions import PreventUpdate

from gridmap.config import Settings
from gridmap.web import ids
from gridmap.web.auth import current_principal, role_name  # access (issue 7)
from gridmap.web.i18n import normalise, t


def _nav_links(lang: str) -> list:
    # Pages register with `nav_key` (an i18n key) and `order`; pages without nav_key stay out.
    # access (issue 7): a page may list the roles that see it (``roles=(...)`` in register_page).
    principal = current_principal()
    pages = sorted(
        (
            p for p in dash.page_registry.values()
            if p.get("nav_key") and (not p.get("roles") or (principal is not None and principal.role in p["roles"]))
        ),
        key=lambda p: (p.get("order") or 0, p["path"]),
    )
    return [dcc.Link(t(p["nav_key"], lang), href=p["relative_path"]) for p in pages]


def header(lang: str) -> html.Header:
    return html.Header(
        className="gm-header",
        children=[
            html.Div(
                className="gm-brand",
                children=[
                    html.Div(className="gm-logo"),
                    html.Div(
                        [
                            html.H1(t("app.title", lang), id=ids.HEADER_TITLE, className="gm-title"),
                            html.Div(t("app.subtitle", lang), id=ids.HEADER_SUBTITLE, className="gm-subtitle"),
                        ]
                    ),
                ],
            ),
            html.Nav(_nav_links(lang), id=ids.NAV, className="gm-nav"),
            html.Div(
                className="gm-header-right",
                children=[
                    html.Span(t("app.demo_note", lang), id=ids.HEADER_NOTE, className="gm-demo-note"),
                    _user_box(),  # access (issue 7)
                    html.Div(
                        className="gm-lang",
                        title=f"{t('app.language', 'zh')} / {t('app.language', 'en')}",
                        children=[
                            html.Button("中文", id=ids.LANG_ZH, n_clicks=0, lang="zh"),
                            html.Button("EN", id=ids.LANG_EN, n_clicks=0, lang="en"),
                        ],
                    ),
                ],
            ),
        ],
    )


# --- access (issue 7): who is logged in, and the way out -----------------------------------------------


def _user_box() -> html.Div | None:
    """The user's name, role (in both languages; CSS shows the page's) and the log-out link."""
    principal = current_principal()
    if principal is None:
        return None
    return html.Div(
        id="header-user",
        className="gm-user",
        style={"display": "flex", "gap": "8px", "alignItems": "center", "fontSize": "13px"},
        children=[
            html.Span(principal.display_name or principal.username, className="gm-user-name",
                      title=principal.username, style={"fontWeight": 600}),
            html.Span(
                [html.Span(role_name(principal.role, lang), className=f"gm-{lang}") for lang in ("zh", "en")]
                + [html.Span(f" · {principal.area_name}")],
                className="gm-user-role",
            ),
            html.A(
                [html.Span(t("auth.logout", lang), className=f"gm-{lang}") for lang in ("zh", "en")],
                href=dash.get_relative_path("/logout"), id="header-logout", className="gm-logout",
                style={"color": "inherit"},
            ),
        ],
    )


def app_layout(settings: Settings) -> html.Div:
    """The whole page; built per request so every worker serves the same thing."""
    lang = normalise(settings.default_language)
    return html.Div(
        id=ids.ROOT,
        className=f"gm-root lang-{lang}",
        children=[
            # The stored choice wins over this default once the browser has one.
            dcc.Store(id=ids.LANG_STORE, storage_type="local", data=lang),
            header(lang),
            html.Main(dash.page_container, className="gm-main"),
        ],
    )


def register_callbacks(app: Dash) -> None:
    """The shell's callbacks, on this app (pages register theirs with @dash.callback)."""

    @app.callback(
        Output(ids.LANG_STORE, "data"),
        Input(ids.LANG_ZH, "n_clicks"),
        Input(ids.LANG_EN, "n_clicks"),
        prevent_initial_call=True,
    )
    def choose_language(_zh: int, _en: int) -> str:
        if ctx.triggered_id == ids.LANG_EN:
            return "en"
        if ctx.triggered_id == ids.LANG_ZH:
            return "zh"
        raise PreventUpdate

    @app.callback(
        Output(ids.ROOT, "className"),
        Output(ids.HEADER_TITLE, "children"),
        Output(ids.HEADER_SUBTITLE, "children"),
        Output(ids.HEADER_NOTE, "children"),
        Output(ids.NAV, "children"),
        Output(ids.LANG_ZH, "className"),
        Output(ids.LANG_EN, "className"),
        Input(ids.LANG_STORE, "data"),
    )
    def translate_shell(lang: str | None):
        lang = normalise(lang)
        return (
            f"gm-root lang-{lang}",
            t("app.title", lang),
            t("app.subtitle", lang),
            t("app.demo_note", lang),
            _nav_links(lang),
            "gm-lang-active" if lang == "zh" else "",
            "gm-lang-active" if lang == "en" else "",
        )
