"""Qt benchmarks: ``startup_ratio`` and ``rss_ratio`` (issue #3), measured side by side.

Each figure is a median over alternating runs of the kiosk probe and its baseline in fresh
processes (bench/qt_probes.py), so the shared machine's noise hits both alike.

* ``startup_ratio``: process start -> sign-in window shown, ÷ the same for a bare PySide6
  window. Target ≤ 1.5.
* ``rss_ratio``: RSS after login with the workspace and three windows open ÷ RSS of a bare
  PySide6 window in a process that also imported httpx, PyJWT and keyring. Target ≤ 1.25.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROBES = Path(__file__).resolve().parent / "qt_probes.py"
ROOT = PROBES.parents[1]


def _run(*args: str) -> str:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [sys.executable, str(PROBES), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    return result.stdout.strip().splitlines()[0]


def _startup(probe: str) -> float:
    started = time.time()
    shown = float(_run(probe))
    return shown - started


def measure(base_url: str, *, runs: int = 7) -> dict[str, Any]:
    """Run both benchmarks; return their figures."""
    bare: list[float] = []
    kiosk: list[float] = []
    for _ in range(runs):
        bare.append(_startup("startup-bare"))
        kiosk.append(_startup("startup-kiosk"))
    floor: list[int] = []
    full: list[int] = []
    for _ in range(max(3, runs // 2)):
        floor.append(int(_run("rss-floor", base_url)))
        full.append(int(_run("rss-kiosk", base_url)))
    startup_bare = statistics.median(bare)
    startup_kiosk = statistics.median(kiosk)
    rss_floor = statistics.median(floor)
    rss_kiosk = statistics.median(full)
    return {
        "startup_bare_s": round(startup_bare, 4),
        "startup_kiosk_s": round(startup_kiosk, 4),
        "startup_ratio": round(startup_kiosk / startup_bare, 3),
        "rss_floor_mb": round(rss_floor / 2**20, 1),
        "rss_kiosk_mb": round(rss_kiosk / 2**20, 1),
        "rss_ratio": round(rss_kiosk / rss_floor, 3),
    }


if __name__ == "__main__":
    import json

    sys.path.insert(0, str(ROOT))
    from kiosk.testing.server.runner import ReferenceServer

    with ReferenceServer() as server:
        print(json.dumps(measure(server.base_url, runs=int(sys.argv[1]) if sys.argv[1:] else 7)))
