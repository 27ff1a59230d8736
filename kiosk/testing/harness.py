"""The object behind the ``shift`` pytest fixture: whole shifts in one call, on the test's server.

:class:`ShiftHarness` picks what a test asked for through the other fixtures and markers:

* ``shift.run(...)`` / ``await shift.arun(...)`` - **virtual time** against the in-process
  reference server (real Django + simplejwt code, no socket): token lifetimes from the profile
  (:data:`~kiosk.testing.shift.PROFILE_LIFETIMES`) unless the test's
  ``@pytest.mark.simplejwt_server(...)`` marker gives ``access_s``/``refresh_s``/``rotate``; the
  test's ``virtual_clock`` if it uses that fixture, else a fresh one;
* ``shift.run_real_time(...)`` - **real time** against a gunicorn reference server (the test's
  ``simplejwt_server`` unless given), which ``restart`` faults really stop and start;
* ``shift.qt(...)`` - real Qt windows through pytest-qt (:mod:`kiosk.testing.qtshift`), in real
  time.

Every call returns a :class:`~kiosk.testing.shift.ShiftReport`; the last one is kept in
``shift.report`` (and printed in the test's report section when the test fails).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from kiosk.testing.shift import PROFILE_LIFETIMES, ShiftPlan, ShiftReport, ShiftSimulator

if TYPE_CHECKING:
    from kiosk.testing.virtual import LinkedClock

#: Marker keys that configure the in-process server (the rest are gunicorn-only).
_IN_PROCESS_KEYS = ("access_s", "refresh_s", "rotate")


def _plan(plan: ShiftPlan | None, hours: float | None, fields: dict[str, Any]) -> ShiftPlan:
    if plan is not None:
        if hours is not None or fields:
            raise TypeError("give either a ShiftPlan or its fields, not both")
        return plan
    if hours is not None:
        fields["duration_s"] = hours * 3600
    return ShiftPlan(**fields)


class ShiftHarness:
    """Runs :class:`~kiosk.testing.shift.ShiftPlan` shifts for one test.

    Args:
        request: the test's fixture request (for its markers and other fixtures).

    Attributes:
        report: the last shift's report (None before the first).
        reports: every report of the test, in order.
        server: the server the last shift ran against (in-process or gunicorn).
    """

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self.server: Any = None
        self.report: ShiftReport | None = None
        self.reports: list[ShiftReport] = []

    # ------------------------------------------------------------------ virtual time

    def simulator(self, plan: ShiftPlan) -> ShiftSimulator:
        """The in-process, virtual-time simulator this test's ``plan`` runs on."""
        from kiosk.testing.inprocess import shared_server

        marker = self._request.node.get_closest_marker("simplejwt_server")
        wanted = dict(marker.kwargs) if marker else {}
        profile_name = plan.policy.name
        access_s, refresh_s = PROFILE_LIFETIMES.get(profile_name, PROFILE_LIFETIMES["general-ward"])
        config: dict[str, Any] = {"access_s": access_s, "refresh_s": refresh_s, "rotate": True}
        config.update({k: wanted[k] for k in _IN_PROCESS_KEYS if k in wanted})
        server = self.server = shared_server(**config)
        clock: LinkedClock | None = None
        if "virtual_clock" in self._request.fixturenames:
            clock = self._request.getfixturevalue("virtual_clock")
        return ShiftSimulator.in_process(server, clock=clock)

    def run(
        self, plan: ShiftPlan | None = None, *, hours: float | None = None, **fields: Any
    ) -> ShiftReport:
        """Play a shift on virtual time and return its report (from a synchronous test).

        Args:
            plan: the shift; or give ``hours`` and :class:`ShiftPlan` fields instead.

        Raises:
            RuntimeError: called from a running event loop (use :meth:`arun` there).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("shift.run() from an async test: use `await shift.arun(...)`")
        return asyncio.run(self.arun(plan, hours=hours, **fields))

    async def arun(
        self, plan: ShiftPlan | None = None, *, hours: float | None = None, **fields: Any
    ) -> ShiftReport:
        """Play a shift on virtual time (from an async test)."""
        shift_plan = _plan(plan, hours, fields)
        return self._keep(await self.simulator(shift_plan).run(shift_plan))

    # ------------------------------------------------------------------ real time

    def run_real_time(
        self, plan: ShiftPlan | None = None, *, server: Any = None, **fields: Any
    ) -> ShiftReport:
        """Play a shift in real time against a gunicorn reference server.

        Args:
            plan: the shift (keep it short: it takes its ``duration_s`` of wall time).
            server: a :class:`~kiosk.testing.server.runner.ReferenceServer`; the test's
                ``simplejwt_server`` by default.
        """
        shift_plan = _plan(plan, None, fields)
        if server is None:
            server = self._request.getfixturevalue("simplejwt_server")
        self.server = server
        simulator = ShiftSimulator.against(server)
        return self._keep(asyncio.run(simulator.run(shift_plan)))

    # ------------------------------------------------------------------ Qt

    def qt(
        self, plan: ShiftPlan | None = None, *, server: Any = None, **fields: Any
    ) -> ShiftReport:
        """Play a shift through the real Qt application (real windows, real time).

        Args:
            plan: the shift (compressed: short lifetimes on the server, seconds of wall time).
            server: a ReferenceServer; the test's ``simplejwt_server`` by default.
        """
        from kiosk.testing.qtshift import QtShiftSimulator

        shift_plan = _plan(plan, None, fields)
        if server is None:
            server = self._request.getfixturevalue("simplejwt_server")
        self.server = server
        qtbot = self._request.getfixturevalue("qtbot")
        return self._keep(QtShiftSimulator(server, qtbot).run(shift_plan))

    # ------------------------------------------------------------------ reports

    def _keep(self, report: ShiftReport) -> ShiftReport:
        self.report = report
        self.reports.append(report)
        return report

    def summary(self) -> str:
        """The reports of this test, one JSON-ish line per field, for a failing test's output."""
        lines: list[str] = []
        for index, report in enumerate(self.reports, 1):
            lines.append(f"shift {index}:")
            lines.extend(f"  {key}: {value}" for key, value in report.as_dict().items())
        return "\n".join(lines)


__all__ = ["ShiftHarness"]
