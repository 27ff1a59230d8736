"""``shift_12h_wall_s`` (issue 4): wall seconds of a 12 h general-ward shift on virtual time.

``kiosk.testing.shift.measure_shift_12h()`` plays 5 windows for 12 virtual hours (~3,600
requests, ~54 refreshes) through the real Django + simplejwt code in-process. It configures
Django process-wide, so :func:`measure` runs it in a child process (this file as a script),
which prints one JSON object: the function's figure (``wall_s``: the simulation itself, not the
Django set-up), its CPU seconds, the child's whole wall time, and the shift report's counters
(captured by wrapping ``virtual_shift``, which ``measure_shift_12h`` calls: one shift is played).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPORT_FIELDS = (
    "refreshes",
    "server_refreshes",
    "refresh_failures",
    "requests",
    "requests_failed",
    "requests_lost",
    "user_visible_401",
    "logins",
    "interruptions",
    "forced_logouts",
    "duplicate_writes",
    "windows",
    "duration_s",
)


def _child() -> None:
    started = time.perf_counter()
    from kiosk.testing import shift

    reports: list[Any] = []
    original = shift.virtual_shift

    def capturing(*args: Any, **kwargs: Any) -> Any:
        report = original(*args, **kwargs)
        reports.append(report)
        return report

    shift.virtual_shift = capturing  # type: ignore[assignment]
    cpu = time.process_time()
    wall_s = shift.measure_shift_12h()
    cpu_s = time.process_time() - cpu
    report = reports[-1] if reports else None
    out: dict[str, Any] = {
        "wall_s": wall_s,
        "process_wall_s": time.perf_counter() - started,
        # CPU seconds of the shift (all threads): less sensitive to a loaded machine than wall.
        "cpu_s": cpu_s,
        "kpi_failures": report.kpi_failures() if report is not None else None,
    }
    for name in REPORT_FIELDS:
        out[name] = getattr(report, name, None)
    print(json.dumps(out), flush=True)


def measure(timeout: float = 300) -> dict[str, Any]:
    """Run the 12 h shift in a child process; its JSON figures."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [sys.executable, __file__],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"shift child exited {result.returncode}: {tail}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    _child()
