"""Credential forms: the login window, the lock page and the re-authentication dialog.

All three are one :class:`CredentialsForm` (user name + password + one button) with different
words around it. Keyboard first: the focus starts in the first empty field, Enter submits,
and errors are sentences a nurse understands, never a stack trace.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from kiosk.core import (
    InsecureTransportError,
    InvalidCredentialsError,
    KioskError,
    NeedsReauthenticationError,
    ServerResponseError,
    ServerUnavailableError,
    TlsVerificationError,
)


def friendly_error(error: BaseException) -> str:
    """Words for a nurse, for any error a sign-in can end with."""
    if isinstance(error, InvalidCredentialsError):
        return "Wrong user name or password."
    if isinstance(error, TlsVerificationError):
        return "Secure connection to the server failed (certificate). Tell IT."
    if isinstance(error, ServerUnavailableError):
        return "Server unreachable — please try again in a moment."
    if isinstance(error, InsecureTransportError):
        return "The server connection is not secure. Tell IT."
    if isinstance(error, NeedsReauthenticationError):
        return "Please sign in again."
    if isinstance(error, ServerResponseError):
        return "The server gave an answer the kiosk cannot use. Tell IT."
    if isinstance(error, KioskError):
        return str(error)
    return "Something went wrong. Please try again; if it keeps happening, tell IT."


def field_label(username_field: str) -> str:
    """The label for the server's username field (``email`` → "Email")."""
    if username_field == "username":
        return "User name"
    return username_field.replace("_", " ").capitalize()


class CredentialsForm(QWidget):
    """User name, password, a submit button and an error line.

    Signals:
        submitted(str, str): the user name and password, when the button or Enter is pressed.
    """

    submitted = Signal(str, str)

    def __init__(
        self, username_label: str, button_text: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.username = QLineEdit(self)
        self.username.setAccessibleName(username_label)
        self.username.setObjectName("username")
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setAccessibleName("Password")
        self.password.setObjectName("password")
        self.button = QPushButton(button_text, self)
        self.button.setProperty("primary", True)
        self.button.setAccessibleName(button_text)
        self.button.setDefault(True)
        self.error = QLabel("", self)
        self.error.setProperty("role", "error")
        self.error.setAccessibleName("Sign-in message")
        self.error.setWordWrap(True)
        form = QFormLayout()
        form.addRow(username_label, self.username)
        form.addRow("Password", self.password)
        self.setMinimumWidth(380)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.button)
        #: The last submission, until the form is reset or shows an error.
        self.pending: tuple[str, str] | None = None
        self.button.clicked.connect(self._submit)
        self.username.returnPressed.connect(self.password.setFocus)
        self.password.returnPressed.connect(self._submit)

    def _submit(self) -> None:
        user, password = self.username.text().strip(), self.password.text()
        if not user or not password:
            self.show_error("Enter your user name and password.")
            (self.username if not user else self.password).setFocus()
            return
        self.set_busy(True)
        self.pending = (user, password)
        self.submitted.emit(user, password)

    def set_busy(self, busy: bool) -> None:
        """Disable the form while the server checks the credentials."""
        self.button.setEnabled(not busy)
        self.username.setEnabled(not busy)
        self.password.setEnabled(not busy)
        if busy:
            self.error.setText("Checking…")

    def show_error(self, text: str) -> None:
        """Show ``text``, clear the password and put the focus back in the form."""
        self.set_busy(False)
        self.pending = None
        self.error.setText(text)
        self.password.clear()
        (self.password if self.username.text() else self.username).setFocus()

    def reset(self, username: str = "") -> None:
        """Empty the form (keeping ``username`` if given) and focus the first empty field."""
        self.set_busy(False)
        self.pending = None
        self.error.setText("")
        self.username.setText(username)
        self.password.clear()
        (self.password if username else self.username).setFocus()


def _add_centred(layout: QVBoxLayout, widget: QWidget) -> None:
    """Add ``widget`` to ``layout``, centred between two stretches.

    Not ``addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)``: the first use of PySide6's
    ``Qt`` namespace builds all of its ~100 Python enums, 26 ms here, and the sign-in window
    is the one thing that must be on screen before anything else loads (kiosk.qt.startup).
    """
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.addStretch(1)
    row.addWidget(widget)
    row.addStretch(1)
    layout.addLayout(row)


class LoginWindow(QWidget):
    """The window shown when no one is signed in."""

    def __init__(self, username_label: str, server_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("kiosk — sign in")
        self.setAccessibleName("Sign in")
        title = QLabel("Sign in to start your shift", self)
        title.setProperty("role", "title")
        where = QLabel(f"Server: {server_name}", self)
        self.notice = QLabel("", self)
        self.notice.setWordWrap(True)
        self.notice.setAccessibleName("Notice")
        self.form = CredentialsForm(username_label, "Sign in", self)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        for widget in (title, where, self.notice, self.form):
            _add_centred(layout, widget)
        layout.addStretch(2)
        self.resize(640, 480)

    def hide_and_release(self) -> None:
        """Hide, and free the native window with its backing store until shown again.

        A hidden window keeps its backing store, an image of its size in pixels (1.2 MB at
        640x480, 8 MB on a full-HD screen), for the whole shift it is not shown. ``show()``
        creates the native window again when the workspace ends.
        """
        self.hide()
        self.destroy()


class LockPage(QWidget):
    """Shown in every window while the workstation is locked; hides all patient data."""

    def __init__(self, username_label: str, parent: QWidget | None = None) -> None:
        from PySide6.QtCore import Qt  # built on the first lock, long after start-up

        super().__init__(parent)
        self.setObjectName("lockPage")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setAccessibleName("Locked")
        # One fixed-width column: a wrapped label placed with an alignment flag gets the
        # height of another width and shows half of its second line.
        column = QWidget(self)
        column.setFixedWidth(480)
        self.title = QLabel("Locked", column)
        self.title.setProperty("role", "title")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint = QLabel("", column)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.form = CredentialsForm(username_label, "Unlock", column)
        stack = QVBoxLayout(column)
        stack.setContentsMargins(0, 0, 0, 0)
        stack.addWidget(self.title)
        stack.addWidget(self.hint)
        stack.addWidget(self.form)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(column, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)

    def prepare(self, user: str | None) -> None:
        """Reset the form for ``user`` (a colleague may type her own name instead)."""
        self.hint.setText(
            f"{user}: enter your password to continue. Another user signing in here "
            "signs the previous user out."
            if user
            else "Sign in to continue."
        )
        self.form.reset(user or "")


class ReauthDialog(QDialog):
    """Asks for the password again after a definitive refresh failure; the work stays open.

    The nurse cannot dismiss it (Escape and the title bar's close do nothing): hidden, it
    would leave her in a workspace whose requests all fail, with nothing saying why. Her ways
    out are her password or *Sign out* (a colleague takes over). The application closes it
    with :meth:`dismiss`, which also frees it: one dialog per re-authentication stayed alive,
    as a child of the ward board, for the rest of the shift.

    Signals:
        sign_out_requested(): the nurse chose to sign out instead.
    """

    sign_out_requested = Signal()

    def __init__(self, username_label: str, user: str, reason: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Sign in again")
        self.setAccessibleName("Sign in again")
        self.setModal(True)
        message = QLabel(
            f"Please enter your password again: {reason}. Your open work is kept.", self
        )
        message.setWordWrap(True)
        self.form = CredentialsForm(username_label, "Sign in again", self)
        self.form.reset(user)
        self.form.username.setReadOnly(True)
        self.sign_out_button = QPushButton("Sign out", self)
        self.sign_out_button.setAccessibleName("Sign out instead")
        self.sign_out_button.setAutoDefault(False)
        self.sign_out_button.clicked.connect(self.sign_out_requested)
        layout = QVBoxLayout(self)
        layout.addWidget(message)
        layout.addWidget(self.form)
        layout.addWidget(self.sign_out_button)
        self._dismissed = False

    def dismiss(self) -> None:
        """Close and free the dialog (the session was renewed or has ended)."""
        self._dismissed = True
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.close()

    def reject(self) -> None:
        """Escape and close: ignored (see the class docstring).

        QDialog's own ``closeEvent`` closes through ``reject()`` and refuses the close while
        the dialog stays visible, so this one override covers the title bar's button too.
        """
        if self._dismissed:
            super().reject()
