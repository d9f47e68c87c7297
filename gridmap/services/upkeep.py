"""Upkeep of the tables that grow with every write, for a timer (``gridmap db tidy``).

- ``change_log`` (0009) gets a row per writing statement; screens only compare its newest id, so
  all but the newest ``change_log_keep`` rows go.
- The logs of the kept figures (0012-0015) get a row per statement that touched them and are
  emptied by the next read that repairs them. The wall reads the per-grid metrics every minute;
  the impact summary is read only by a commander drawing, so in a district where households are
  edited all day and nobody draws, its log would grow until someone does (and that preview would
  pay for the whole backlog). The timer repairs every kept figure from its log, as a read would.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.services import changes, coverage


@dataclass
class Tidied:
    change_log_pruned: int
    repaired: dict[str, dict]  # kept figure: its refresh (mode, log rows, keys recomputed, ms)
    ms: float

    def as_dict(self) -> dict:
        return asdict(self)


def tidy(session: Session, settings: Settings) -> Tidied:
    """Repair every kept figure from its log and prune the change log, in the caller's transaction."""
    t0 = time.perf_counter()
    repaired = coverage.refresh_kept_figures(session, settings)
    pruned = changes.prune(session, settings.change_log_keep)
    return Tidied(pruned, {k: asdict(v) for k, v in repaired.items()},
                  round((time.perf_counter() - t0) * 1000, 1))
