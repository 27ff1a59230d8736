"""Architecture rules of DESIGN §2 that a test can hold: the core stays free of Qt and
reads time only through its injected clock."""

from __future__ import annotations

import io
import json
import pkgutil
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import kiosk.core

CORE_DIR = Path(kiosk.core.__file__).parent
CORE_MODULES = sorted(f"kiosk.core.{info.name}" for info in pkgutil.iter_modules([str(CORE_DIR)]))

#: Direct reads of the time or direct sleeps; only clock.py (SystemClock) may have them.
FORBIDDEN_CALL = re.compile(
    r"\b(?:time\.time|time\.monotonic|time\.sleep|datetime\.now|datetime\.utcnow"
    r"|datetime\.today|date\.today|asyncio\.sleep)\s*\("
)
#: ``from time import time`` and friends would hide a direct call from the pattern above.
FORBIDDEN_IMPORT = re.compile(
    r"^\s*from\s+(?:time\s+import\s+.*\b(?:time|monotonic|sleep)\b"
    r"|asyncio\s+import\s+.*\bsleep\b)",
    re.MULTILINE,
)


def test_core_modules_are_found() -> None:
    assert "kiosk.core.manager" in CORE_MODULES
    assert "kiosk.core.clock" in CORE_MODULES
    assert len(CORE_MODULES) >= 12


def test_importing_every_core_module_does_not_import_qt() -> None:
    script = (
        "import importlib, json, sys\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'PySide6', 'shiboken6', 'PyQt5', 'PyQt6', 'qasync', 'kiosk'})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(CORE_MODULES) <= set(loaded)  # the imports really happened
    assert [m for m in loaded if not m.startswith("kiosk")] == []
    assert not any(m.startswith(("kiosk.qt", "kiosk.testing")) for m in loaded)


def _code_without_comments_and_strings(path: Path) -> str:
    """The source with comments and string literals blanked (docstrings may mention
    ``time.time()``; only code counts)."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    kept = []
    for token in tokens:
        if token.type in {tokenize.COMMENT, tokenize.STRING}:
            continue
        if sys.version_info >= (3, 12) and token.type in {
            tokenize.FSTRING_START,
            tokenize.FSTRING_MIDDLE,
            tokenize.FSTRING_END,
        }:
            continue
        kept.append(token.string)
    return " ".join(kept).replace(" . ", ".").replace(" (", "(")


def test_the_scanner_sees_calls_and_ignores_prose(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Never call time.time() here."""\n'
        "# asyncio.sleep(1) in a comment\n"
        "x = 'datetime.now()'\n"
        "y = time.time ()\n"
        "await asyncio.sleep(0)\n",
        encoding="utf-8",
    )
    code = _code_without_comments_and_strings(sample)
    assert FORBIDDEN_CALL.findall(code) == ["time.time(", "asyncio.sleep("]
    assert FORBIDDEN_IMPORT.search("from time import monotonic\n")
    assert FORBIDDEN_IMPORT.search("from asyncio import gather, sleep\n")
    assert not FORBIDDEN_IMPORT.search("from datetime import datetime, timezone\n")
    assert not FORBIDDEN_IMPORT.search("from kiosk.core.clock import Clock\n")


def test_only_clock_py_reads_the_time_or_sleeps() -> None:
    offenders: dict[str, list[str]] = {}
    for path in sorted(CORE_DIR.rglob("*.py")):
        if path.name == "clock.py" and path.parent == CORE_DIR:
            continue
        code = _code_without_comments_and_strings(path)
        found = FORBIDDEN_CALL.findall(code) + FORBIDDEN_IMPORT.findall(
            path.read_text(encoding="utf-8")
        )
        if found:
            offenders[str(path.relative_to(CORE_DIR))] = found
    assert offenders == {}


def test_clock_py_is_where_the_system_time_lives() -> None:
    code = _code_without_comments_and_strings(CORE_DIR / "clock.py")
    assert "time.time(" in code
    assert "asyncio.sleep(" in code
