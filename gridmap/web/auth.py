"""Log-in, log-out and the guard in front of every page and API route.

* ``/login`` is a plain HTML form served by Flask (no Dash callback needs to be public for it);
  ``/logout`` ends the session. Both speak Chinese and English.
* The browser holds a random session token in Flask's signed cookie; the session itself (user,
  expiry, end) lives in PostgreSQL (services.auth), so any gunicorn worker serves any request and a
  log-out ends the session everywhere. The cookie is HttpOnly, SameSite=Lax, and Secure when
  ``session_cookie_secure`` is set or the request came over HTTPS (behind nginx: ``proxy_hops``).
* A ``before_request`` guard: unauthenticated page requests go to ``/login?next=...``; API and Dash
  data requests (``/api/...``, ``/_dash-update-component``, ``/_dash-layout`` ...) get a 401 JSON;
  assets/session.js turns that 401 on an open page into a visit to ``/login?next=...&reason=...``,
  where the form says the session ended.
  Public: ``/login``, ``/logout``, ``/healthz``, ``/assets/`` and ``/_dash-component-suites/``
  (static files, no data). When the database is down the guard answers 503 (JSON for data, a page
  that retries by itself for pages) — never a traceback.
* Every SQLAlchemy transaction begun while a logged-in request is served names its user to the
  audit trail (``gridmap.actor``), so writes made by any page are attributed without each
  callback having to say so.

Callbacks and routes read the user with :func:`current_principal`.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlparse

import dash
from flask import Flask, Response, g, has_request_context, jsonify, redirect, request, session
from flask.sessions import SecureCookieSessionInterface
from markupsafe import escape
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.domain import access as rules
from gridmap.services import auth as auth_service
from gridmap.services.access import Principal
from gridmap.web.context import SETTINGS_KEY, current_settings
from gridmap.web.i18n import t

SESSION_KEY = "sid"
CSRF_KEY = "csrf"
_PRINCIPAL = "gridmap_principal"
# ``/login?reason=session_ended``: an open page found its session gone (assets/session.js).
SESSION_ENDED = "session_ended"

# Paths (relative to the app's prefix) served without a log-in.
PUBLIC_PATHS = frozenset({"login", "logout", "healthz", "favicon.ico", "_favicon.ico"})
PUBLIC_PREFIXES = ("assets/", "_dash-component-suites/")
# Paths answered with JSON (401 / 503) instead of a redirect to the log-in page.
DATA_PREFIXES = ("api/", "_dash-", "_reload-hash", "_alive")


def current_principal() -> Principal | None:
    """The logged-in user of the request being served (None outside a request or when anonymous)."""
    if not has_request_context():
        return None
    return g.get(_PRINCIPAL)


def role_name(role: str, lang: str) -> str:
    zh, en = rules.ROLES.get(role, (role, role))
    return zh if lang == "zh" else en


# --- the secret that signs cookies ------------------------------------------------------------------


def secret_key(settings: Settings) -> str:
    """``settings.secret_key``, else the key in ``settings.secret_file``, made (0600) on first use.

    Every worker of one installation reads the same file, so a cookie signed by one is valid in all.
    """
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.secret_file)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker may be writing it this very moment
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it and start again") from None
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


# --- the guard ----------------------------------------------------------------------------------------


def _relative(path: str, prefix: str) -> str:
    return path[len(prefix):] if path.startswith(prefix) else path.lstrip("/")


def _is_public(rel: str) -> bool:
    return rel in PUBLIC_PATHS or rel.startswith(PUBLIC_PREFIXES)


def _is_data(rel: str) -> bool:
    return rel.startswith(DATA_PREFIXES)


def _json(status: int, code: str, message: str) -> Response:
    response = jsonify(ok=False, code=code, error=message)
    response.status_code = status
    return response


def _now() -> datetime:
    return datetime.now(UTC)


def _unavailable_page(exc: Exception) -> Response:
    body = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="5"><title>{escape(t('auth.db_down', 'zh'))}</title></head>
<body style="font-family: sans-serif; margin: 3em"><h2>{escape(t('auth.db_down', 'zh'))} /
{escape(t('auth.db_down', 'en'))}</h2><p>{escape(str(exc))}</p>
<p>{escape(t('auth.retrying', 'zh'))} / {escape(t('auth.retrying', 'en'))}</p></body></html>"""
    return Response(body, status=503, mimetype="text/html")


def _guard(prefix: str):
    def guard():
        rel = _relative(request.path, prefix)
        if _is_public(rel):
            return None
        token = session.get(SESSION_KEY)
        principal = None
        if token:
            try:
                with session_scope(current_settings().database_url) as db:
                    principal = auth_service.principal_for_token(db, token, now=_now())
            except DatabaseUnavailable as exc:
                return _json(503, exc.code, str(exc)) if _is_data(rel) else _unavailable_page(exc)
        if principal is not None:
            g.setdefault(_PRINCIPAL, principal)
            return None
        if _is_data(rel):
            return _json(401, "login_required", f"{t('auth.required', 'zh')} / {t('auth.required', 'en')}")
        return redirect(f"{prefix}login?next={quote(request.full_path.rstrip('?'))}")

    return guard


# --- the log-in page ----------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body {{ margin: 0; font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", sans-serif;
         background: #eef2f6; color: #1d2733; }}
  .gm-login {{ max-width: 360px; margin: 9vh auto; background: #fff; border-radius: 8px; padding: 28px 32px;
               box-shadow: 0 2px 14px rgba(0,0,0,.12); }}
  .gm-login h1 {{ font-size: 21px; margin: 0 0 4px; }}
  .gm-login .sub {{ color: #5b6b7c; font-size: 13px; margin-bottom: 20px; }}
  .gm-login label {{ display: block; font-size: 13px; margin: 12px 0 4px; }}
  .gm-login input[type=text], .gm-login input[type=password] {{ width: 100%; box-sizing: border-box;
               padding: 8px 10px; font-size: 15px; border: 1px solid #b8c3cf; border-radius: 4px; }}
  .gm-login button {{ margin-top: 20px; width: 100%; padding: 9px; font-size: 15px; border: 0; border-radius: 4px;
               background: #b3261e; color: #fff; cursor: pointer; }}
  .gm-login .error {{ background: #fdecea; color: #8c1d18; padding: 8px 10px; border-radius: 4px; font-size: 13px; }}
  .gm-login .notice {{ background: #fff4e5; color: #7a4a00; padding: 8px 10px; border-radius: 4px; font-size: 13px;
               margin-bottom: 8px; }}
  .gm-login .note {{ color: #5b6b7c; font-size: 12px; margin-top: 16px; }}
</style></head>
<body><form class="gm-login" id="login-form" method="post" action="{action}" autocomplete="off">
<h1>{title_zh}</h1><div class="sub">{title_en} · {login_zh} / {login_en}</div>
{error}
{notice}
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
<label for="login-username">{user_zh} / {user_en}</label>
<input type="text" id="login-username" name="username" value="{username}" autofocus required maxlength="64">
<label for="login-password">{pass_zh} / {pass_en}</label>
<input type="password" id="login-password" name="password" required maxlength="256">
<button type="submit" id="login-submit">{login_zh} / {login_en}</button>
<div class="note">{note_zh}<br>{note_en}</div>
</form></body></html>"""


def _safe_next(value: str | None, prefix: str) -> str:
    """Only a path of this site: never another host (an open redirect)."""
    if not value:
        return prefix
    parsed = urlparse(value)
    if parsed.scheme or parsed.netloc or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return prefix
    rel = _relative(parsed.path, prefix)
    if _is_public(rel) or _is_data(rel):
        return prefix
    return value


def _login_page(prefix: str, *, error: str = "", notice: str = "", username: str = "", next_url: str = "",
                status: int = 200) -> Response:
    csrf = session.get(CSRF_KEY) or secrets.token_urlsafe(24)
    session[CSRF_KEY] = csrf
    body = _PAGE.format(
        title=escape(f"{t('auth.login', 'zh')} · {t('app.title', 'zh')}"),
        title_zh=escape(t("app.title", "zh")), title_en=escape(t("app.title", "en")),
        login_zh=escape(t("auth.login", "zh")), login_en=escape(t("auth.login", "en")),
        user_zh=escape(t("auth.username", "zh")), user_en=escape(t("auth.username", "en")),
        pass_zh=escape(t("auth.password", "zh")), pass_en=escape(t("auth.password", "en")),
        note_zh=escape(t("auth.note", "zh")), note_en=escape(t("auth.note", "en")),
        action=escape(f"{prefix}login"), csrf=escape(csrf), next=escape(next_url), username=escape(username),
        error=f'<div class="error" id="login-error">{escape(error)}</div>' if error else "",
        notice=f'<div class="notice" id="login-notice">{escape(notice)}</div>' if notice else "",
    )
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _login_view(prefix: str):
    def login():
        settings = current_settings()
        if request.method == "GET":
            # assets/session.js sends an open page here when its session ended: say why.
            notice = (f"{t('auth.session_ended', 'zh')} / {t('auth.session_ended', 'en')}"
                      if request.args.get("reason") == SESSION_ENDED else "")
            return _login_page(prefix, notice=notice, next_url=_safe_next(request.args.get("next"), prefix))
        form = request.form
        next_url = _safe_next(form.get("next"), prefix)
        username = (form.get("username") or "").strip()[:64]
        expected = session.get(CSRF_KEY)
        if not expected or not hmac.compare_digest(expected, form.get("csrf") or ""):
            return _login_page(prefix, error=f"{t('auth.expired_form', 'zh')} / {t('auth.expired_form', 'en')}",
                               username=username, next_url=next_url, status=400)
        error = None
        try:
            with session_scope(settings.database_url) as db:
                try:
                    user = auth_service.authenticate(
                        db, settings, username, form.get("password") or "", now=_now(), remote_addr=request.remote_addr or "",
                    )
                    token = auth_service.start_session(
                        db, settings, user, now=_now(), user_agent=request.headers.get("User-Agent", ""),
                        remote_addr=request.remote_addr or "",
                    )
                except (auth_service.LoginFailed, auth_service.AccountLocked) as exc:
                    error = exc  # the failure is counted and audited: this transaction commits
        except DatabaseUnavailable as exc:
            return _login_page(prefix, error=str(exc), username=username, next_url=next_url, status=503)
        if error is not None:
            return _login_page(prefix, error=error.message, username=username, next_url=next_url, status=401)
        session.clear()  # a new session id after log-in (no fixation)
        session[SESSION_KEY] = token
        session.permanent = True
        return redirect(next_url)

    return login


def _logout_view(prefix: str):
    def logout():
        token = session.get(SESSION_KEY)
        if token:
            try:
                with session_scope(current_settings().database_url) as db:
                    auth_service.end_session(db, token, now=_now())
            except DatabaseUnavailable:
                pass  # the cookie goes anyway; the session row expires by itself
        session.clear()
        return redirect(f"{prefix}login")

    return logout


# --- naming the user in every transaction ---------------------------------------------------------


def _name_actor(db: Session, _transaction, connection) -> None:
    principal = current_principal()
    if principal is None:
        return
    connection.execute(
        text("SELECT set_config('gridmap.actor', :a, true), set_config('gridmap.actor_role', :r, true)"),
        {"a": principal.actor, "r": principal.role},
    )


def _listen_once() -> None:
    if not event.contains(Session, "after_begin", _name_actor):
        event.listen(Session, "after_begin", _name_actor)


# --- the cookie -----------------------------------------------------------------------------------------


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, whose cookie is Secure whenever the request came over HTTPS.

    Behind nginx the scheme is the one nginx was asked with: ``proxy_hops`` (web/__init__.py) makes
    werkzeug's ProxyFix trust X-Forwarded-Proto, so ``request.is_secure`` tells the truth; without
    it the header is ignored and only ``session_cookie_secure`` makes the cookie Secure.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(super().get_cookie_secure(app) or (has_request_context() and request.is_secure))


# --- wiring -------------------------------------------------------------------------------------------


def register_auth(app: dash.Dash) -> None:
    """Log-in, log-out, the guard, and the signed session cookie, on ``app``'s Flask server."""
    server: Flask = app.server
    settings: Settings = server.config[SETTINGS_KEY]
    prefix = app.config.routes_pathname_prefix or "/"
    server.secret_key = secret_key(settings)
    server.session_interface = _SessionInterface()
    server.config.update(
        SESSION_COOKIE_NAME=settings.session_cookie_name,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
    )
    server.add_url_rule(f"{prefix}login", "gridmap_login", _login_view(prefix), methods=["GET", "POST"])
    server.add_url_rule(f"{prefix}logout", "gridmap_logout", _logout_view(prefix), methods=["GET", "POST"])
    server.before_request(_guard(prefix))
    _listen_once()

