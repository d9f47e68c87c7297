"""Test fixtures on a real PostGIS.

Each pytest-xdist worker gets a database of its own, cloned from the test database that
``scripts/setup-db.sh gridmap_test`` made (it carries the postgis extension), migrated fresh at the
start of the run and loaded with the small demo district. Every integration test then runs inside
a transaction that is rolled back at the end (GeoAlchemy2's pattern), so tests never see each
other's writes. There is no skipping: without PostGIS the tests fail, in CI and everywhere else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gridmap.config import Settings, get_settings

FIXED_NOW = datetime(2022, 11, 25, 9, 0, tzinfo=UTC)


def _worker_url() -> str:
    base = make_url(get_settings().test_database_url)
    # A database per xdist worker and per run, so two runs on one machine never collide.
    worker = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    return base.set(database=f"{base.database}_{worker}").render_as_string(hide_password=False)


def _admin_execute(*statements: str) -> None:
    template = make_url(get_settings().test_database_url)
    admin = create_engine(template.set(database="postgres"), poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
    admin.dispose()


def _recreate_database(url: str) -> None:
    """Clone the test database (setup-db.sh gave it postgis as a superuser), so this works for a
    role that may create databases but not the untrusted postgis extension."""
    name = make_url(url).database
    template = make_url(get_settings().test_database_url).database
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for attempt in range(20):
        try:
            _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            return
        except OperationalError as exc:  # the other worker is cloning the template right now
            if "being accessed by other users" not in str(exc) or attempt == 19:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated database of this worker's own, with the small demo district loaded."""
    from gridmap.db.migrate import upgrade
    from gridmap.db.session import session_scope
    from gridmap.services.demo import load_demo

    url = _worker_url()
    _recreate_database(url)
    upgrade(url)
    with session_scope(url) as session:
        load_demo(session, scale="small", seed=7, now=FIXED_NOW, settings=Settings(database_url=url))
    yield url
    from gridmap.db.session import get_engine

    get_engine(url).dispose()
    _admin_execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = create_engine(database_url, poolclass=pool.NullPool)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose every commit stays inside an outer transaction that is rolled back."""
    connection = engine.connect()
    outer = connection.begin()
    db = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield db
    finally:
        db.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def now() -> datetime:
    return FIXED_NOW


def pytest_sessionfinish(session, exitstatus):
    """In CI a skipped test is a failure: every test needs PostGIS or chromium, and CI has both."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        session.exitstatus = 1
        if reporter:
            reporter.write_line(f"CI: {skipped} test(s) skipped; a skip fails the run here", red=True)
