"""The QA plugin's collection between tests, once automatic garbage collection is off."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

INNER = textwrap.dedent(
    """
    import gc
    import weakref

    class Node:
        pass

    refs = []

    def test_garbage_made_while_automatic_collection_is_off():
        gc.disable()  # as a kiosk does once its network thread runs
        node = Node()
        node.itself = node  # a cycle: only a collection frees it
        refs.append(weakref.ref(node))
        del node
        for _ in range(gc.get_threshold()[0] + 10):  # a collection is now due
            cycle = []
            cycle.append(cycle)
        assert refs[0]() is not None

    def test_the_plugin_collected_it_after_that_test():
        assert refs[0]() is None
    """
)


def test_due_garbage_is_collected_after_each_test(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout
