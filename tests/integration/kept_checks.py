"""Checks of the kept figures (migrations 0012-0015) shared by the tests of the loaders and of
``gridmap db tidy``."""

from __future__ import annotations

from gridmap.services import coverage

# (state, log) of each kept table
KEPT_TABLES = (("service_coverage_state", "service_coverage_dirty"),
               ("staff_count_state", "staff_count_dirty"),
               ("key_person_count_state", "key_person_count_dirty"),
               ("community_summary_state", "community_summary_dirty"))


def assert_kept_per_grid_figures_are_live(session, settings) -> None:
    """The kept per-grid figures are what the live computations find."""
    assert coverage.kept_key_persons_by_grid(session, None) == coverage.key_persons_by_grid(session, None)
    assert coverage.kept_staff_by_grid(session, None) == coverage.staff_by_grid(session, None)
    live = coverage.service_coverage(session, settings)
    assert coverage.kept_service_coverage(session, settings) == {
        g: {k: n for k, n in kinds.items() if n} for g, kinds in live.items() if any(kinds.values())}
