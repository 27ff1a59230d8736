"""Shared test setup: Qt runs offscreen everywhere; a crash prints the thread that crashed."""

import faulthandler
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Dump only the crashing thread's stack on a fatal error (a segfault in Qt, say).

    pytest's faulthandler plugin dumps every thread, the network thread first; a CI log that
    keeps the first lines of a failure then shows the thread that did *not* crash. The plugin
    keeps its duplicate of stderr in its stash (a private key, hence the fallback).
    """
    try:
        from _pytest.faulthandler import fault_handler_stderr_fd_key

        fd = config.stash[fault_handler_stderr_fd_key]
    except (ImportError, KeyError):
        return
    faulthandler.enable(file=fd, all_threads=False)
