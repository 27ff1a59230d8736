"""The bridge between Qt and the core: the core's asyncio loop in one network thread.

The UI thread never waits on the network. :class:`CoreBridge` runs a plain asyncio event
loop in a daemon thread (``kiosk-network``), creates the one :class:`TokenManager` and the
API client there, and hands work to it with :meth:`CoreBridge.submit`. Results, state changes
and security events come back as Qt signals; the bridge lives in the UI thread and the
network thread's signals are queued, in order, to the bridge's own slots in the UI thread,
which emit the public signals there.

Why the relay, rather than the public signals emitted from the network thread: a signal
emitted in one thread and connected to a plain Python callable (a lambda, or a method that is
not a ``@Slot``) crosses threads through PySide's internal receiver objects, and that path has
known crashes in PySide6 6.8 and later (PYSIDE-3124; projects that hit it, pymmcore-widgets
for one, decorated every cross-thread receiver with ``@Slot``). With the relay the only
cross-thread hop is a queued call of a declared slot of a QObject, whatever a window or a
hospital's plug-in connects to the public signals: those are emitted in the UI thread, so
their receivers are called directly there.

Why not qasync or QtAsyncio: DESIGN §2 measured QtAsyncio failing at socket I/O (so
httpx.AsyncClient fails on it) and qasync being fragile under pytest-qt, while a plain loop
in a thread with queued signals passed every case at the same speed.

Python's cyclic garbage collector runs only in the UI thread once the network thread exists
(:mod:`kiosk.qt.collector`): a collection in the network thread destroyed a closed window's
widgets there, and crashed the UI thread that was reading them.

The two threads share the GIL, so every microsecond of Python the network thread runs is one
the UI thread may wait for. :func:`_skip_missing_sniffio` removes the biggest avoidable one:
httpcore 1.0 calls ``import sniffio`` inside ``current_async_library()``, several times per
request (its locks, events and cancellation shields), and sniffio is no longer installed with
anyio 4, so each call searched ``sys.path`` again for a module that is not there: 37 us a
time, about 14 % of the network thread's GIL time under load (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import itertools
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from PySide6.QtCore import QObject, Signal, Slot

from kiosk.core import KioskError, SecurityEvent, ServerSettings, SessionPolicy, TokenManager
from kiosk.core.vault import Vault
from kiosk.qt import collector

log = logging.getLogger(__name__)

Job = Callable[[TokenManager], Awaitable[Any]]
Callback = Callable[[Any, BaseException | None], None]


def _skip_missing_sniffio() -> None:
    """Make ``import sniffio`` fail at once when sniffio is not installed.

    ``sys.modules[name] = None`` is Python's own "known missing" mark: the import raises
    ``ModuleNotFoundError`` without searching ``sys.path``. httpcore and anyio treat that
    error as "not installed, so asyncio", as they do now. An installed sniffio is untouched.
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


class ApiResult:
    """What an API call produced: the status and decoded JSON, or the error that stopped it."""

    __slots__ = ("data", "error", "status")

    def __init__(self, status: int | None, data: Any, error: BaseException | None) -> None:
        self.status = status
        self.data = data
        self.error = error

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return self.error is None and self.status is not None and 200 <= self.status < 300


class CoreBridge(QObject):
    """Runs the core in a network thread and reports back through signals.

    Signals:
        state_changed(str): the session state (``State`` value) after every transition.
        lock_changed(bool): the workstation was locked (True) or unlocked (False).
        security_event(object): every :class:`~kiosk.core.SecurityEvent`, in order.

    All three are emitted in the UI thread. The two private signals below are the only ones
    emitted in the network thread, and only the bridge's own slots receive them.
    """

    state_changed = Signal(str)
    lock_changed = Signal(bool)
    security_event = Signal(object)
    # Network thread -> UI thread (queued, in emission order, to the slots below).
    _event_arrived = Signal(object)
    _job_finished = Signal(int, object, object)

    def __init__(
        self,
        server: ServerSettings,
        *,
        policy: SessionPolicy | None = None,
        vault: Vault | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        api_transport: httpx.AsyncBaseTransport | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.server = server
        self.policy = policy or SessionPolicy()
        self._vault = vault
        self._transport = transport
        self._api_transport = api_transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._manager: TokenManager | None = None
        self._api: httpx.AsyncClient | None = None
        self._ids = itertools.count(1)
        self._callbacks: dict[int, Callback] = {}
        self._state = "logged_out"
        self._event_arrived.connect(self._relay_event)
        self._job_finished.connect(self._deliver)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the network thread and the token manager in it (returns when ready)."""
        if self._thread is not None:
            return
        _skip_missing_sniffio()
        # From now on two threads run Python: a cyclic collection in the network thread would
        # destroy Qt objects there (kiosk/qt/collector.py), so only the UI thread collects.
        collector.install()
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run_loop, args=(ready,), name="kiosk-network", daemon=True
        )
        self._thread.start()
        ready.wait()
        self._call_in_loop(self._boot()).result(timeout=30)

    def stop(self) -> None:
        """Close the API client and the manager (the session is not signed out) and the thread."""
        if self._thread is None or self._loop is None:
            return
        try:
            self._call_in_loop(self._shutdown()).result(timeout=30)
        except Exception:
            log.warning("closing the network thread's clients failed", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    @property
    def started(self) -> bool:
        """Whether the network thread runs (between :meth:`start` and :meth:`stop`)."""
        return self._thread is not None

    @property
    def manager(self) -> TokenManager:
        """The one TokenManager. Touch it only from jobs passed to :meth:`submit`."""
        if self._manager is None:
            raise RuntimeError("CoreBridge is not started")
        return self._manager

    @property
    def state(self) -> str:
        """The last session state reported to the UI thread."""
        return self._state

    # -- work -----------------------------------------------------------------------------

    def submit(self, job: Job, callback: Callback | None = None) -> concurrent.futures.Future[Any]:
        """Run ``job(manager)`` in the network thread.

        Args:
            job: a coroutine function taking the manager.
            callback: called in the UI thread with ``(result, error)`` when the job ends.

        Returns:
            A future for code that may block (tests, shutdown); the UI never waits on it.
        """
        job_id = next(self._ids)
        if self._loop is None or self._thread is None or self._loop.is_closed():
            # Stopped (or never started): a late timer or click must not crash the UI.
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            future.set_exception(KioskError("the kiosk's network thread is not running"))
            return future
        if callback is not None:
            self._callbacks[job_id] = callback

        async def run() -> Any:
            try:
                result = await job(self.manager)
            except BaseException as exc:
                self._job_finished.emit(job_id, None, exc)
                raise
            self._job_finished.emit(job_id, result, None)
            return result

        return self._call_in_loop(run())

    def request(
        self,
        method: str,
        path: str,
        callback: Callable[[ApiResult], None] | None = None,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> concurrent.futures.Future[Any]:
        """Send an API request through the token manager; ``callback(ApiResult)`` in the UI."""

        async def job(_manager: TokenManager) -> ApiResult:
            assert self._api is not None
            try:
                response = await self._api.request(method, path, json=json, headers=headers)
            except Exception as exc:
                return ApiResult(None, None, exc)
            try:
                data = response.json()
            except ValueError:
                data = None
            return ApiResult(response.status_code, data, None)

        def deliver(result: Any, error: BaseException | None) -> None:
            if callback is not None:
                callback(result if error is None else ApiResult(None, None, error))

        return self.submit(job, deliver)

    def run_sync(self, job: Job, timeout: float = 60.0) -> Any:
        """Run a job and wait for it: for tests, start-up and the self-test, never the UI."""
        return self.submit(job).result(timeout=timeout)

    # -- network thread -------------------------------------------------------------------

    def _run_loop(self, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(ready.set)
        self._loop.run_forever()
        self._loop.close()

    def _call_in_loop(self, coro: Awaitable[Any]) -> concurrent.futures.Future[Any]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]

    async def _boot(self) -> None:
        self._manager = TokenManager(
            self.server, policy=self.policy, vault=self._vault, transport=self._transport
        )
        self._manager.subscribe(self._on_event)
        await self._manager.start()
        self._api = httpx.AsyncClient(
            base_url=self.server.base_url,
            auth=self._manager.auth,
            transport=self._api_transport,
            # The server's CA bundle (hospital PKI), shared with the token client.
            verify=self._manager.ssl_context,
            timeout=httpx.Timeout(self.server.timeout_s),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        )

    async def _shutdown(self) -> None:
        if self._api is not None:
            await self._api.aclose()
        if self._manager is not None:
            await self._manager.aclose()

    def _on_event(self, event: SecurityEvent) -> None:
        # Runs in the network thread: the one emit is queued to _relay_event.
        self._event_arrived.emit(event)

    # -- UI thread ------------------------------------------------------------------------

    @Slot(object)
    def _relay_event(self, event: SecurityEvent) -> None:
        self.security_event.emit(event)
        if event.kind.value == "state_changed":
            self._state = str(event.data.get("to"))
            self.state_changed.emit(self._state)
        elif event.kind.value in {"locked", "unlocked"}:
            self.lock_changed.emit(event.kind.value == "locked")

    @Slot(int, object, object)
    def _deliver(self, job_id: int, result: Any, error: BaseException | None) -> None:
        callback = self._callbacks.pop(job_id, None)
        if callback is not None:
            callback(result, error)
