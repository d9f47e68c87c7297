"""``gridmap db tidy``: every kept figure repaired from its log (the logs left empty, the figures
those of a full computation) and the change log pruned to its newest rows, the version unchanged."""

from __future__ import annotations

import json

from sqlalchemy import text

from gridmap.cli import main
from gridmap.config import Settings
from gridmap.services import coverage
from gridmap.services.changes import data_version
from gridmap.services.upkeep import tidy
from tests.integration.kept_checks import KEPT_TABLES, assert_kept_per_grid_figures_are_live
from tests.integration.test_community_summary import _snapshot

DIRTY = tuple(dirty for _state, dirty in KEPT_TABLES)


def _logged(session) -> dict[str, int]:
    return {t: session.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in DIRTY}


def test_tidy_repairs_every_kept_figure_and_prunes_the_change_log(session, settings):
    tidy(session, settings)  # whatever the loaders left
    # writes that touch every kept figure: a household with a key person, a staff member stood
    # down, a service point moved
    session.execute(text("INSERT INTO household (building_id, room, residents, geom) "
                         "SELECT id, 'U-1', 2, ST_Centroid(geom) FROM building ORDER BY id LIMIT 1"))
    session.execute(text("INSERT INTO key_person (household_id, name, version, geom) "
                         "SELECT max(id), '测试', 1, (SELECT geom FROM household ORDER BY id DESC LIMIT 1) FROM household"))
    session.execute(text("INSERT INTO key_person_category_link (key_person_id, category_id) "
                         "SELECT max(id), (SELECT min(id) FROM key_person_category WHERE vulnerable) FROM key_person"))
    session.execute(text("UPDATE staff SET active = false WHERE id = (SELECT min(s.id) FROM staff s "
                         "JOIN staff_assignment sa ON sa.staff_id = s.id AND sa.grid_id IS NOT NULL)"))
    session.execute(text("UPDATE service_point SET geom = ST_Translate(geom, 0.003, 0) "
                         "WHERE id = (SELECT min(id) FROM service_point WHERE ST_GeometryType(geom) = 'ST_Point')"))
    assert all(_logged(session).values()), _logged(session)
    version = data_version(session).version
    assert session.execute(text("SELECT count(*) FROM change_log")).scalar_one() > 3

    done = tidy(session, Settings(database_url=settings.database_url, change_log_keep=3))

    assert _logged(session) == dict.fromkeys(DIRTY, 0)
    assert {k: v["mode"] for k, v in done.repaired.items()} == dict.fromkeys(done.repaired, "repaired")
    assert done.change_log_pruned > 0
    assert session.execute(text("SELECT count(*) FROM change_log")).scalar_one() == 4  # the newest and 3 more
    assert data_version(session).version == version
    # what a full computation gives
    assert_kept_per_grid_figures_are_live(session, settings)
    repaired = _snapshot(session)
    coverage.refresh_kept_figures(session, settings, full=True)
    assert _snapshot(session) == repaired


def test_the_command_prints_what_it_did(settings, capsys):
    assert main(["db", "tidy"], settings=settings) == 0
    done = json.loads(capsys.readouterr().out)
    assert set(done["repaired"]) == {"service_coverage", "staff_counts", "key_person_counts", "community_summary"}
    assert all(r["mode"] in ("fresh", "repaired") for r in done["repaired"].values())
