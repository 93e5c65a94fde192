"""benchmarks/bench_web.py runs end to end with tiny sizes and writes the JSON it promises."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentgym.testing import require

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_web.py"

pytestmark = pytest.mark.browser


def test_bench_web_tiny(tmp_path: Path) -> None:
    require(os.path.exists("/usr/bin/chromium"), "Chromium is not installed: apt-get install chromium")
    require(importlib.util.find_spec("playwright") is not None, "Playwright is not installed: pip install playwright")
    require(importlib.util.find_spec("miniwob") is not None, "MiniWoB++ pages are not installed: pip install miniwob")
    out = tmp_path / "bench.json"
    tiny = ["--rounds", "2", "--steps", "2", "--concurrent", "2", "--conc-steps", "2"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *tiny, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    lat = result["latency"]
    assert lat["skipped"] == {}
    assert set(lat["reset"]) == set(lat["step"]) == {"bare Playwright", "ChromiumBrowser", "Web-v0"}
    assert all(s["n"] == 2 and 0 < s["p50_ms"] <= s["p99_ms"] for s in lat["reset"].values())
    assert all(s["n"] == 4 for s in lat["step"].values())
    assert set(lat["observation"]) == {"bare Playwright", "ChromiumBrowser"}
    conc = result["concurrency"]
    assert set(conc) == {"shared", "one each", "one sync thread"}
    # The point of sharing: one browser process (and one driver) for the episodes, against one each.
    assert conc["shared"]["live"]["browsers"] == 1 and conc["shared"]["live"]["drivers"] == 1
    assert conc["one each"]["live"]["browsers"] == 2 and conc["one each"]["live"]["drivers"] == 2
    assert conc["one each"]["peak"]["chromium"] > conc["shared"]["peak"]["chromium"]
    assert all(r["step"]["n"] == 4 and r["live"]["pss_mb"] > 0 for r in conc.values())
    assert "Browser episode latency" in proc.stdout and "2 concurrent episodes" in proc.stdout
