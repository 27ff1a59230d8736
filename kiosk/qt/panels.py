"""The security panel (recent events and KPIs) and the read-only policy page."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFormLayout, QLabel, QListWidget, QListWidgetItem, QVBoxLayout

from kiosk.core import SecurityEvent, Severity
from kiosk.qt.resources import icon
from kiosk.qt.windows import KioskWindow, WindowRegistry

if TYPE_CHECKING:
    from kiosk.qt.app import KioskApp

#: KPI rows of the panel: metrics key, label, how to show the value.
KPI_ROWS: list[tuple[str, str, str]] = [
    ("refresh_success_rate", "Refresh success rate", "{:.1%}"),
    ("refresh_latency_mean_ms", "Mean refresh time", "{:.0f} ms"),
    ("refresh_latency_p95_ms", "95th percentile refresh time", "{:.0f} ms"),
    ("user_visible_401", "Requests refused (401) shown to the user", "{}"),
    ("interruptions", "Interruptions (sign-in prompts not asked for)", "{}"),
    ("session_duration_s", "Session duration", "duration"),
    ("logins", "Sign-ins this session", "{}"),
]


def format_kpi(value: Any, fmt: str) -> str:
    """Show one KPI value ("—" when there is none yet)."""
    if value is None:
        return "—"
    if fmt == "duration":
        minutes = int(value // 60)
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return fmt.format(value)


def _severity_icon(severity: Severity) -> str:
    if severity >= Severity.HIGH:
        return "reauth"
    if severity >= Severity.MEDIUM:
        return "warning"
    return "info"


class SecurityPanel(KioskWindow):
    """Recent security events and the KPIs, refreshed every two seconds."""

    kind = "security"

    def __init__(self, app: KioskApp) -> None:
        super().__init__(app, "Security panel")
        self.events = QListWidget(self.content)
        self.events.setAccessibleName("Recent security events")
        self.kpis: dict[str, QLabel] = {}
        form = QFormLayout()
        for key, label, _ in KPI_ROWS:
            value = QLabel("—", self.content)
            value.setAccessibleName(label)
            self.kpis[key] = value
            form.addRow(label, value)
        layout = QVBoxLayout(self.content)
        layout.addWidget(QLabel("Session health", self.content))
        layout.addLayout(form)
        layout.addWidget(QLabel("Recent security events (newest first)", self.content))
        layout.addWidget(self.events, 1)
        for event in app.recent_events:
            self.add_event(event)
        app.bridge.security_event.connect(self.add_event)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.update_kpis)
        self._timer.start(2000)
        self.update_kpis()

    def closeEvent(self, event: Any) -> None:  # Qt override
        self._timer.stop()
        super().closeEvent(event)

    def add_event(self, event: SecurityEvent) -> None:
        """Put ``event`` on top of the list (routine state changes included)."""
        when = datetime.fromtimestamp(event.time, UTC).astimezone().strftime("%H:%M:%S")
        item = QListWidgetItem(icon(_severity_icon(event.severity)), f"{when}  {event.message}")
        item.setToolTip(f"{event.kind.value} · {event.severity.name.lower()}")
        self.events.insertItem(0, item)
        while self.events.count() > 500:
            self.events.takeItem(self.events.count() - 1)

    def update_kpis(self) -> None:
        """Ask the network thread for the counters (never read across threads)."""

        async def read(manager: Any) -> dict[str, Any]:
            return dict(manager.metrics())

        self.app.bridge.submit(read, lambda result, error: self.show_kpis(result or {}))

    def show_kpis(self, metrics: dict[str, Any]) -> None:
        """Show ``metrics``."""
        for key, _, fmt in KPI_ROWS:
            self.kpis[key].setText(format_kpi(metrics.get(key), fmt))


class PolicyPage(KioskWindow):
    """The policy in force, read-only."""

    kind = "policy"

    def __init__(self, app: KioskApp) -> None:
        super().__init__(app, "Policy in force")
        form = QFormLayout(self.content)
        policy = asdict(app.policy)
        for field in fields(app.policy):
            value = policy[field.name]
            if field.name.endswith("_s") and isinstance(value, int | float):
                shown = f"{value / 60:g} min" if value >= 60 else f"{value:g} s"
            else:
                shown = str(value)
            label = QLabel(shown, self.content)
            label.setAccessibleName(field.name.replace("_", " "))
            form.addRow(field.name.replace("_", " ").capitalize(), label)
        form.addRow("Server", QLabel(app.server.base_url, self.content))
        form.addRow("Vault", QLabel(app.vault_description, self.content))


def register(registry: WindowRegistry) -> None:
    """Built-in windows."""
    registry.add("security", "Security panel", SecurityPanel)
    registry.add("policy", "Policy in force", PolicyPage)
