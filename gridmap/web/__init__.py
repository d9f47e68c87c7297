"""The Dash web app: ``create_app(settings)`` builds it; ``gridmap serve`` and ``app.py`` run it.

Nothing outside this package imports Dash. The settings given here are kept in the Flask app's
config (web/context.py) and read from there by routes and callbacks, never from the environment
per request.
"""

from __future__ import annotations

from pathlib import Path

import dash
from werkzeug.middleware.proxy_fix import ProxyFix

from gridmap.config import Settings, get_settings
from gridmap.web import layout
from gridmap.web.auth import register_auth  # access (issue 7)
from gridmap.web.context import SETTINGS_KEY
from gridmap.web.coverage_routes import register_coverage_routes  # coverage views (issue 5)
from gridmap.web.i18n import t
from gridmap.web.routes import register_routes
from gridmap.web.task_routes import register_task_routes  # tasks and reports (issue 6)

_HERE = Path(__file__).resolve().parent
PAGES_FOLDER = _HERE / "pages"
# The repository's top-level assets/ (CSS and the JS functions that style the map's features).
ASSETS_FOLDER = _HERE.parents[1] / "assets"


def create_app(settings: Settings | None = None) -> dash.Dash:
    """A new app serving the pages in gridmap/web/pages against ``settings.database_url``."""
    settings = settings or get_settings()
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder=str(PAGES_FOLDER),
        assets_folder=str(ASSETS_FOLDER),
        # Every script and stylesheet from this server: the app must work with no internet.
        serve_locally=True,
        # Pages build their layouts per request; their ids are not all in the shell's layout.
        suppress_callback_exceptions=True,
        title=f"{t('app.title', 'zh')} · {t('app.title', 'en')}",
        update_title=None,
    )
    app.server.config[SETTINGS_KEY] = settings
    _trust_proxies(app, settings.proxy_hops)
    # access (issue 7): log-in, log-out, and the guard in front of every page and data route.
    register_auth(app)
    register_routes(app.server, settings, app.config.routes_pathname_prefix)
    register_coverage_routes(app.server, app.config.routes_pathname_prefix)  # coverage views (issue 5)
    register_task_routes(app.server, app.config.routes_pathname_prefix)  # tasks and reports (issue 6)
    app.layout = lambda: layout.app_layout(settings)
    layout.register_callbacks(app)
    _claim_page_callbacks(app)
    return app


def _trust_proxies(app: dash.Dash, hops: int) -> None:
    """Behind ``hops`` proxies (nginx, docs/deploy.md), take the client's address, scheme and host
    from their X-Forwarded-For/-Proto/-Host headers; with 0, leave the headers ignored: a client
    talking to the app directly could otherwise claim any address or HTTPS. (The app is served at
    the root, so X-Forwarded-Prefix is never trusted.)"""
    if hops > 0:
        app.server.wsgi_app = ProxyFix(app.server.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def _claim_page_callbacks(app: dash.Dash) -> None:
    """Give this app the callbacks its pages just registered, now rather than at its first request.

    Page modules register with ``@dash.callback`` into process-wide lists, which Dash hands to the
    first app that serves a request. When several apps are created in one process before serving
    (tests, a server per database), the first would take every copy and the others none. Dash's own
    first-request setup run here, once, binds each app to exactly its own pages' callbacks.
    """
    with app.server.test_request_context("/"):
        app._setup_server()


__all__ = ["create_app"]
