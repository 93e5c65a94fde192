"""benchmarks/bench_terminal.py runs end to end with tiny counts and writes the JSON it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentgym.testing import require_bwrap, require_docker

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_terminal.py"
LAYERS = {"subprocess", "sandbox.exec", "ShellSession.run", "env.step(run)"}
TASKS = ["dedupe-lines", "find-commit"]


def run_bench(tmp_path: Path, backend: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "bench.json"
    tiny = ["--n-local", "4", "--n-docker", "4", "--rounds", "2", "--resets", "2", "--episodes", "1"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--backends", backend, *tiny, "--tasks", *TASKS, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc.stdout


def check_backend(result: dict[str, Any], backend: str, stdout: str) -> None:
    assert result["skipped"] == {}
    assert set(result["backends"]) == {backend}
    assert result["machine"]["cpu_count"] >= 1
    assert result["config"]["backends"] == [backend]
    res = result["backends"][backend]
    assert set(res["commands"]) == {"true", "echo hi"}
    for by in res["commands"].values():
        assert set(by["layers"]) == LAYERS
        for s in by["layers"].values():
            assert s["n"] == 4 and 0 < s["median_ms"] <= s["p90_ms"]
        assert set(by["ratios"]) == {"env/sandbox", "env/subprocess", "shell/sandbox"}
        assert all(r > 0 for r in by["ratios"].values())
    assert set(res["resets"]) == set(TASKS)
    assert all(s["n"] == 2 and s["median_ms"] > 0 for s in res["resets"].values())
    for parts in res["episodes"].values():
        assert set(parts) == {"total", "reset", "run", "submit"}
        assert parts["total"]["n"] == 1
        assert parts["total"]["median_ms"] >= parts["submit"]["median_ms"] > 0
    assert "Terminal-v0 latency" in stdout and "env.reset find-commit" in stdout


def test_local_backend(tmp_path: Path) -> None:
    require_bwrap()
    result, stdout = run_bench(tmp_path, "local")
    check_backend(result, "local", stdout)
    assert "docker_engine" not in result["machine"]
    assert result["machine"]["bubblewrap"].startswith("bubblewrap")


@pytest.mark.docker
def test_docker_backend(tmp_path: Path) -> None:
    require_docker()
    result, stdout = run_bench(tmp_path, "docker")
    check_backend(result, "docker", stdout)
    assert result["machine"]["docker_engine"]
