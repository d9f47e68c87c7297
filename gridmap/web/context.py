"""What a request needs from the app it runs in: the settings given to ``create_app``.

They live in the Flask app's config, not in a module global, so several apps (tests, workers) with
different settings can share one process.
"""

from __future__ import annotations

from flask import current_app

from gridmap.config import Settings

SETTINGS_KEY = "GRIDMAP_SETTINGS"


def current_settings() -> Settings:
    """The settings of the app serving the current request (or running the current callback)."""
    return current_app.config[SETTINGS_KEY]
