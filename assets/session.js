/* An open page whose session ended (expired, logged out in another tab or by an administrator).
 *
 * The server's guard (gridmap/web/auth.py) answers every data request of such a page — Dash
 * callbacks (_dash-update-component), the map's layers and /api/changes — with 401; Dash alone
 * would just stop updating. Here the browser's fetch is wrapped: the first 401 from one of this
 * app's data routes sends the page to the log-in form, with next= back to where the user was and
 * reason= so the form says why. Dash looks fetch up on window at every request, so wrapping it
 * here (assets load before the first callback fires) catches all of them.
 */
(function () {
    "use strict";
    if (window.__gridmapSessionWatch) {
        return;
    }
    window.__gridmapSessionWatch = true;

    var REASON = "session_ended";  // auth.SESSION_ENDED
    var original = window.fetch;
    if (typeof original !== "function") {
        return;
    }
    var leaving = false;

    function prefix() {
        // Dash writes its config (with the app's path prefix) into the page.
        try {
            var el = document.getElementById("_dash-config");
            var cfg = el ? JSON.parse(el.textContent) : {};
            return cfg.requests_pathname_prefix || cfg.url_base_pathname || "/";
        } catch (e) {
            return "/";
        }
    }

    function isData(url) {
        var a;
        try {
            a = new URL(url, window.location.href);
        } catch (e) {
            return false;
        }
        if (a.origin !== window.location.origin) {
            return false;
        }
        var rel = a.pathname.indexOf(prefix()) === 0 ? a.pathname.slice(prefix().length) : a.pathname.replace(/^\//, "");
        return rel.indexOf("_dash-") === 0 || rel.indexOf("api/") === 0;
    }

    function toLogin() {
        if (leaving) {
            return;
        }
        leaving = true;
        var here = window.location.pathname + window.location.search + window.location.hash;
        window.location.assign(prefix() + "login?next=" + encodeURIComponent(here) + "&reason=" + REASON);
    }

    window.fetch = function (input, init) {
        var url = typeof input === "string" ? input : (input && input.url) || String(input);
        return original.apply(this, arguments).then(function (response) {
            if (response.status === 401 && isData(url)) {
                toLogin();
            }
            return response;
        });
    };
})();
