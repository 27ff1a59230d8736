"""The Qt shell: the only package that imports PySide6 (bridge, application, windows).

Importing this package first corrects one memory cost of PySide6 itself (measured with
6.11.3, bench/RESULTS.md). Once PySide6 is imported, shiboken's replacement ``__import__``
asks ``PySide6.support.feature._mod_uses_pyside(module)`` about every module imported after
it (to support ``from __feature__ import snake_case``), and that function calls
``inspect.getsource(module)``. That reads the module's whole source through
:mod:`linecache`, which keeps it for the life of the process: for the kiosk (asyncio,
httpx, PyJWT, cryptography, keyring, anyio, the kiosk itself: about 330 files) that was
12 MB of resident memory in the memory probe, 9 MB of it for httpx, PyJWT and keyring,
which any program that imports them after PySide6 pays as well.
Clearing ``linecache`` afterwards does not give it back (the freed blocks stay in the
allocator's arenas), so :func:`_stop_source_caching` replaces that one function with one
that gives the same answer (does the source mention PySide6?) by reading the source file
once, without keeping the text. Nothing else changes: tracebacks still read sources on demand.
If a PySide6 version no longer has the function, nothing is replaced.
"""

from __future__ import annotations

import inspect
import sys
from types import ModuleType

import PySide6  # noqa: F401 - installs shiboken's import hook, which is corrected below


def _source_mentions_pyside(module: ModuleType) -> bool:
    """``"PySide6" in inspect.getsource(module)``, without filling ``linecache``.

    The same lookup as :func:`inspect.getsource`: the source file, else the module's loader.
    """
    try:
        path = inspect.getsourcefile(module)
    except TypeError:  # built in, or a namespace package: no source
        return False
    if path is None:
        return False
    try:
        with open(path, "rb") as source:
            return b"PySide6" in source.read()
    except OSError:
        pass
    get_source = getattr(getattr(module, "__loader__", None), "get_source", None)
    if get_source is None:
        return False
    try:
        text = get_source(module.__name__)
    except Exception:  # inspect.getsource would have raised too: no source
        return False
    return isinstance(text, str) and "PySide6" in text


def _stop_source_caching() -> bool:
    """Install :func:`_source_mentions_pyside` in shiboken's feature module (True if done)."""
    feature = sys.modules.get("PySide6.support.feature")
    if feature is None or not callable(getattr(feature, "_mod_uses_pyside", None)):
        return False
    feature._mod_uses_pyside = _source_mentions_pyside  # type: ignore[attr-defined]
    return True


_stop_source_caching()
