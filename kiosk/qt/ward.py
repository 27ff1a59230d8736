"""The demo ward windows: the ward board (patients) and patient charts (observations).

They use the reference server's ward API through the token manager (``CoreBridge.request``).
An observation is sent with an ``Idempotency-Key``, and its form keeps the typed text until
the server confirmed it: a failed send, a lock or a re-authentication loses nothing.

A reload changes only what the answer changed: the board updates the cells whose text
differs, a chart appends new observations, and an answer equal to what is shown changes
no widget at all. Rebuilding the table and the list on every answer made Qt repaint them
each time: about six paint events per answer, each a trip through the application's
Python event filter in the UI thread (bench/RESULTS.md, ``ui_stall_p99_ms``).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from kiosk.qt.bridge import ApiResult
from kiosk.qt.windows import KioskWindow, WindowRegistry

if TYPE_CHECKING:
    from kiosk.qt.app import KioskApp


def _line(observation: dict[str, Any]) -> str:
    return f"{observation.get('kind')}: {observation.get('value')}"


def _problem(result: ApiResult) -> str:
    if result.error is not None:
        return "Could not reach the server — your entry is kept; try again."
    return f"The server refused this (HTTP {result.status}) — your entry is kept."


class WardBoard(KioskWindow):
    """The ward's patients; Enter or double-click opens a chart.

    Signals:
        api_finished(str, object): a request of this window ended: ``"load"`` and its
            :class:`~kiosk.qt.bridge.ApiResult`, emitted after the window showed the outcome
            (lets a test or a shift simulation know when a click's work is done).
    """

    kind = "ward"
    api_finished = Signal(str, object)

    def __init__(self, app: KioskApp) -> None:
        super().__init__(app, "Ward board")
        self.table = QTableWidget(self.content)
        self.table.setColumnCount(3)
        self.table.setHorizontalHeaderLabels(["Bed", "Patient", "Ward"])
        self.table.setAccessibleName("Patients")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setDefaultSectionSize(44)
        self.table.itemActivated.connect(self._open_selected)
        self.status = QLabel("Loading patients…", self.content)
        self.status.setAccessibleName("Ward board status")
        self.reload_button = QPushButton("Reload", self.content)
        self.reload_button.setAccessibleName("Reload patients")
        self.reload_button.clicked.connect(self.reload)
        self.open_button = QPushButton("Open chart", self.content)
        self.open_button.setAccessibleName("Open the selected patient's chart")
        self.open_button.clicked.connect(self._open_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.reload_button)
        buttons.addWidget(self.open_button)
        layout = QVBoxLayout(self.content)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        self.patients: list[dict[str, Any]] = []
        self.reload()

    def reload(self) -> None:
        """Fetch the patient list."""
        self.app.bridge.request("GET", "/api/patients/", self._loaded)

    def _loaded(self, result: ApiResult) -> None:
        self._show_patients(result)
        self.api_finished.emit("load", result)

    def _show_patients(self, result: ApiResult) -> None:
        if not result.ok or not isinstance(result.data, list):
            self.status.setText(_problem(result).replace(" — your entry is kept", ""))
            return
        patients = [p for p in result.data if isinstance(p, dict)]
        if patients != self.patients or self.table.rowCount() != len(patients):
            self._fill_table(patients)
        self.patients = patients
        self.status.setText(f"{len(self.patients)} patients")
        if self.patients and self.table.currentRow() < 0:
            self.table.selectRow(0)

    def _fill_table(self, patients: list[dict[str, Any]]) -> None:
        """Show ``patients``, changing only the cells whose text or patient differ."""
        table = self.table
        table.setRowCount(len(patients))
        role = Qt.ItemDataRole.UserRole
        for row, patient in enumerate(patients):
            key = patient.get("id")
            values = (patient.get("bed", ""), patient.get("name", ""), patient.get("ward", ""))
            for column, value in enumerate(values):
                text = str(value)
                item = table.item(row, column)
                if item is None:
                    item = QTableWidgetItem(text)
                    item.setData(role, key)
                    table.setItem(row, column, item)
                    continue
                if item.text() != text:
                    item.setText(text)
                if item.data(role) != key:
                    item.setData(role, key)

    def _open_selected(self, *_: object) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self.patients):
            self.app.open_window("chart", patient=self.patients[row])


class PatientChart(KioskWindow):
    """One patient's observations, and a form to record a new one.

    Signals:
        api_finished(str, object): a request of this window ended: ``"load"`` (the
            observations) or ``"record"`` (a new one), and its
            :class:`~kiosk.qt.bridge.ApiResult`, emitted after the window showed the outcome.
    """

    kind = "chart"
    api_finished = Signal(str, object)

    def __init__(self, app: KioskApp, patient: dict[str, Any]) -> None:
        name = str(patient.get("name", ""))
        super().__init__(app, f"Chart — {name or 'patient'}")
        self.patient = patient
        self.observations = QListWidget(self.content)
        self.observations.setAccessibleName("Observations")
        self.kind_box = QComboBox(self.content)
        self.kind_box.addItems(["pulse", "bp", "temperature", "spo2", "note"])
        self.kind_box.setAccessibleName("Observation kind")
        self.value = QLineEdit(self.content)
        self.value.setAccessibleName("Observation value")
        self.value.setPlaceholderText("e.g. 72, 120/80, or a note")
        self.value.returnPressed.connect(self.record)
        self.record_button = QPushButton("Record", self.content)
        self.record_button.setProperty("primary", True)
        self.record_button.setAccessibleName("Record observation")
        self.record_button.clicked.connect(self.record)
        self.message = QLabel("", self.content)
        self.message.setAccessibleName("Chart message")
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Kind", self.kind_box)
        form.addRow("Value", self.value)
        layout = QVBoxLayout(self.content)
        layout.addWidget(QLabel(f"Bed {patient.get('bed', '?')} · {patient.get('ward', '')}"))
        layout.addWidget(self.observations, 1)
        layout.addLayout(form)
        layout.addWidget(self.record_button)
        layout.addWidget(self.message)
        self._pending_key: str | None = None
        #: The texts the observations list shows (so an unchanged answer changes nothing).
        self._lines: list[str] = []
        self.recorded = 0
        self.reload()

    @property
    def url(self) -> str:
        """The observations URL of this patient."""
        return f"/api/patients/{self.patient.get('id')}/observations/"

    def reload(self) -> None:
        """Fetch the observations."""
        self.app.bridge.request("GET", self.url, self._loaded)

    @property
    def unsent(self) -> str:
        """The typed value the server has not confirmed yet ("" when there is none)."""
        return self.value.text().strip()

    def _loaded(self, result: ApiResult) -> None:
        self._show_observations(result)
        self.api_finished.emit("load", result)

    def _show_observations(self, result: ApiResult) -> None:
        if not result.ok or not isinstance(result.data, list):
            self.message.setText(_problem(result).replace(" — your entry is kept", ""))
            return
        self._show_lines([_line(item) for item in result.data if isinstance(item, dict)])

    def _show_lines(self, lines: list[str]) -> None:
        """Make the list show ``lines``: nothing to do when it already does, append when
        the list only grew, else refill."""
        widget = self.observations
        shown = self._lines
        if widget.count() == len(shown):
            if lines == shown:
                return
            if lines[: len(shown)] == shown:
                widget.addItems(lines[len(shown) :])
                self._lines = lines
                return
        widget.clear()
        widget.addItems(lines)
        self._lines = lines

    def record(self) -> None:
        """POST the form; keep it (and the same idempotency key) until the server confirms."""
        value = self.value.text().strip()
        if not value:
            self.message.setText("Enter a value first.")
            self.value.setFocus()
            return
        # The same key for every retry of this entry: a send whose answer was lost and is
        # sent again is stored once.
        self._pending_key = self._pending_key or uuid.uuid4().hex
        self.record_button.setEnabled(False)
        self.message.setText("Saving…")
        body = {"kind": self.kind_box.currentText(), "value": value}
        self.app.bridge.request(
            "POST",
            self.url,
            self._recorded,
            json=body,
            headers={"Idempotency-Key": self._pending_key},
        )

    def _recorded(self, result: ApiResult) -> None:
        self._show_recorded(result)
        self.api_finished.emit("record", result)

    def _show_recorded(self, result: ApiResult) -> None:
        self.record_button.setEnabled(True)
        if not result.ok:
            self.message.setText(_problem(result))
            return
        self._pending_key = None
        self.recorded += 1
        self.value.clear()
        self.message.setText("Saved.")
        data = result.data if isinstance(result.data, dict) else {}
        self._show_lines([*self._lines, _line(data)])


def register(registry: WindowRegistry) -> None:
    """The ``kiosk.windows`` entry point of the ward demo."""
    registry.add("ward", "Ward board", WardBoard)
    registry.add("chart", "Patient chart", PatientChart, in_menu=False)
