"""Browser episodes: latency against bare Playwright, and processes and memory with one Chromium per worker.

    python benchmarks/bench_web.py [--rounds 20] [--steps 10] [--concurrent 16] [--conc-steps 5]
        [--page click-checkboxes] [--out runs/bench_web.json]

**Latency** (one episode at a time) on a MiniWoB++ page (``click-checkboxes``: clicking a
checkbox does not end the page's task, so an episode has many steps), three ways:

* ``bare Playwright``: the sync API on this thread, the same Chromium binary and flags
  (:data:`~agentgym.sandboxes.browser.CHROMIUM_ARGS`), no fence; reset = close the context, a new
  context and page, ``goto`` the page, seed it; step = ``page.click`` on a checkbox and read
  the page's state (``WOB_DONE_GLOBAL``, ``WOB_RAW_REWARD_GLOBAL``) with ``evaluate``;
* ``ChromiumBrowser``: the same reset and step through agentgym's backend (fenced context,
  init scripts, calls hopping to its event-loop thread, the detached-id check, the check for
  opened tabs);
* ``Web-v0``: ``env.reset`` and ``env.step(click(element_id=...))`` (the step includes the
  observation: the accessibility tree, URL, title, tabs).

The observation alone is timed too: ``ChromiumBrowser.a11y_tree()`` against Playwright's own
``locator("body").aria_snapshot()``. The ways alternate within each round (order rotated), so
machine load hits them alike.

**Concurrency**: ``--concurrent`` episodes at once, one thread each (a worker's episodes), each
a reset and ``--conc-steps`` steps: ``shared`` (one Chromium and one Playwright driver for the
process, a context per episode: the default), ``one each`` (``shared=False``: a Chromium and a
driver per episode, as before issue 14), and ``one sync thread`` (bare Playwright's sync API, one
Chromium, every episode's calls taking turns on one thread: the design not chosen for sharing).
Peak processes (Chromium, Playwright drivers) and peak summed RSS of this process's children are
sampled every 50 ms; PSS (shared pages counted once, split between sharers) is read once with
every episode's page open. Step latency under load and the wall time are reported per mode.

No pass/fail thresholds; the JSON (``--out``) keeps the numbers and the machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agentgym.envs.web import miniwob_html_dir
from agentgym.sandboxes.browser import CHROMIUM_ARGS, CHROMIUM_PATH, ChromiumBrowser
from agentgym.sandboxes.browser._driver import process_tree

START_JS = """(seed) => {
  Math.seedrandom(seed);
  core.EPISODE_MAX_TIME = 1e9;
  core.startEpisodeReal();
  return document.getElementById('query').innerText.trim();
}"""
STATE_JS = "() => [WOB_DONE_GLOBAL, WOB_RAW_REWARD_GLOBAL]"
CHECKBOX = "#area input[type=checkbox] >> nth=0"


def stats(xs: list[float]) -> dict[str, Any]:
    """n, p50 and p99 (nearest rank) in milliseconds."""
    s = sorted(xs)
    if not s:
        return {"n": 0, "p50_ms": None, "p99_ms": None}
    rank = min(len(s) - 1, max(0, -(-99 * len(s) // 100) - 1))
    return {"n": len(s), "p50_ms": statistics.median(s) * 1000, "p99_ms": s[rank] * 1000}


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ----- the three ways to run an episode ---------------------------------------------------


class Bare:
    """Bare Playwright (sync API): one Chromium, a new context per episode, no fence."""

    def __init__(self, base_url: str):
        from playwright.sync_api import sync_playwright

        self.base_url = base_url
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=list(CHROMIUM_ARGS))
        self.ctx: Any = None
        self.page: Any = None

    def reset(self, page: str, seed: int) -> None:
        if self.ctx is not None:
            self.ctx.close()
        self.ctx = self.browser.new_context(viewport={"width": 800, "height": 600}, service_workers="block")
        self.page = self.ctx.new_page()
        self.page.goto(self.base_url + page, wait_until="load")
        self.page.evaluate(START_JS, seed)

    def step(self) -> None:
        self.page.click(CHECKBOX)
        self.page.evaluate(STATE_JS)

    def observe(self) -> str:
        return str(self.page.locator("body").aria_snapshot())

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()


class Agentgym:
    """ChromiumBrowser: the same reset and step through agentgym's backend."""

    def __init__(self, shared: bool = True):
        self.box = ChromiumBrowser(miniwob_html_dir(), timeout=10, shared=shared)

    def reset(self, page: str, seed: int) -> None:
        self.box.new_episode()
        self.box.goto(page)
        self.box.evaluate(START_JS, seed)

    def step(self) -> None:
        self.box.click(CHECKBOX)
        self.box.evaluate(STATE_JS)

    def observe(self) -> str:
        return self.box.a11y_tree()

    def close(self) -> None:
        self.box.close()


class WebEnv:
    """``agentgym/Web-v0``: env.reset and env.step(click) on a checkbox."""

    def __init__(self) -> None:
        import agentgym
        from agentgym.parsing import format_tool_call

        self.env: Any = agentgym.make("agentgym/Web-v0")
        self._call = format_tool_call

    def reset(self, page: str, seed: int) -> None:
        kind = Path(page).stem
        self.env.reset(options={"task_id": f"{kind}-{seed:03d}"})

    def step(self) -> None:
        box = self.env.find("checkbox")
        _, _, terminated, truncated, _ = self.env.step(self._call("click", {"element_id": box}))
        if terminated or truncated:
            raise RuntimeError("the Web-v0 episode ended on a checkbox click")

    def close(self) -> None:
        self.env.close()


def latency(args: argparse.Namespace, base_url: str) -> dict[str, Any]:
    page = f"miniwob/{args.page}.html"
    ways: dict[str, Any] = {"bare Playwright": Bare(base_url), "ChromiumBrowser": Agentgym()}
    skipped: dict[str, str] = {}
    try:
        ways["Web-v0"] = WebEnv()
    except Exception as e:  # the environment is another module's: report, do not fail the benchmark
        skipped["Web-v0"] = f"{type(e).__name__}: {e}"
    resets: dict[str, list[float]] = {name: [] for name in ways}
    steps: dict[str, list[float]] = {name: [] for name in ways}
    observe: dict[str, list[float]] = {"bare Playwright": [], "ChromiumBrowser": []}
    names = list(ways)
    for way in ways.values():  # warm up: the first launch and page load are not what is measured
        way.reset(page, 0)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            way = ways[name]
            try:
                resets[name].append(timed(functools.partial(way.reset, page, r + 1)))
                for _ in range(args.steps):
                    steps[name].append(timed(way.step))
                if name in observe:
                    observe[name].append(timed(way.observe))
            except Exception as e:
                if name != "Web-v0":
                    raise
                skipped["Web-v0"] = f"{type(e).__name__}: {e}"
                names.remove(name)
                ways.pop(name).close()
                break
    for way in ways.values():
        way.close()
    return {
        "page": page,
        "reset": {n: stats(v) for n, v in resets.items() if v},
        "step": {n: stats(v) for n, v in steps.items() if v},
        "observation": {n: stats(v) for n, v in observe.items() if v},
        "skipped": skipped,
    }


# ----- processes and memory ----------------------------------------------------------------


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _rss_kb(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, IndexError, ValueError):
        return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def children() -> list[int]:
    return [p for p in process_tree(os.getpid()) if p != os.getpid()]


def census() -> dict[str, Any]:
    """Chromium processes (all, and browser processes: those whose parent is not Chromium), drivers, RSS."""
    procs = children()
    chrome = [p for p in procs if "chrom" in _comm(p)]
    roots = 0
    for p in chrome:
        try:
            parent = int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        roots += parent not in chrome
    return {
        "chromium": len(chrome),
        "browsers": roots,
        "drivers": sum(_comm(p).startswith("node") for p in procs),  # Playwright's driver: node-MainThread
        "rss_mb": sum(_rss_kb(p) for p in procs) / 1024,
    }


class Sampler(threading.Thread):
    """Keeps the peaks of :func:`census` every ``interval`` seconds until stopped."""

    def __init__(self, interval: float = 0.05):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak: dict[str, float] = {"chromium": 0, "browsers": 0, "drivers": 0, "rss_mb": 0.0}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            now = census()
            for k in self.peak:
                self.peak[k] = max(self.peak[k], now[k])
            self._stop_event.wait(self.interval)

    def stop(self) -> dict[str, float]:
        self._stop_event.set()
        self.join()
        return self.peak


def concurrency(mode: str, args: argparse.Namespace, base_url: str) -> dict[str, Any]:
    """``args.concurrent`` episodes at once in ``mode``: peak processes and memory, step latency, wall time."""
    page = f"miniwob/{args.page}.html"
    n = args.concurrent
    live = threading.Barrier(n + 1)  # every episode reset: the main thread reads processes and PSS
    go = threading.Barrier(n + 1)  # then all step at once
    done = threading.Barrier(n + 1)
    steps: list[float] = []
    errors: list[str] = []
    owner = concurrent.futures.ThreadPoolExecutor(1)  # one sync thread: every episode's calls take turns on it
    shared_bare: list[Bare] = []
    if mode == "one sync thread":
        shared_bare.append(owner.submit(Bare, base_url).result())

    def episode(i: int) -> None:
        way: Any = None
        try:
            way = _SyncEpisode(shared_bare[0], owner) if shared_bare else Agentgym(shared=mode == "shared")
            way.reset(page, i)
        except Exception as e:
            errors.append(f"episode {i}: {type(e).__name__}: {e}")
        live.wait()
        go.wait()
        try:
            if way is not None and not errors:
                steps.extend([timed(way.step) for _ in range(args.conc_steps)])
        except Exception as e:
            errors.append(f"episode {i}: {type(e).__name__}: {e}")
        done.wait()
        if way is not None:
            way.close()

    sampler = Sampler()
    sampler.start()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=episode, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    live.wait()
    at_live = census()
    pss = sum(_pss_kb(p) for p in children()) / 1024
    go.wait()
    t1 = time.perf_counter()
    done.wait()
    t2 = time.perf_counter()
    for t in threads:
        t.join()
    if shared_bare:
        owner.submit(shared_bare[0].close).result()
    owner.shutdown()
    peak = sampler.stop()
    if errors:
        raise RuntimeError(f"{mode}: {errors[:3]}")
    return {
        "episodes": n,
        "peak": peak,
        "live": {**at_live, "pss_mb": pss},
        "step": stats(steps),
        "reset_wall_s": t1 - t0,
        "steps_wall_s": t2 - t1,
        "steps_per_s": len(steps) / (t2 - t1) if t2 > t1 else None,
    }


class _SyncEpisode:
    """One episode on a Bare browser whose sync objects live on one thread (``owner``), shared by all episodes."""

    def __init__(self, bare: Bare, owner: concurrent.futures.ThreadPoolExecutor):
        self.bare, self.owner = bare, owner
        self.ctx: Any = None
        self.page: Any = None

    def _reset(self, page: str, seed: int) -> None:
        self.ctx = self.bare.browser.new_context(viewport={"width": 800, "height": 600}, service_workers="block")
        self.page = self.ctx.new_page()
        self.page.goto(self.bare.base_url + page, wait_until="load")
        self.page.evaluate(START_JS, seed)

    def _step(self) -> None:
        self.page.click(CHECKBOX)
        self.page.evaluate(STATE_JS)

    def reset(self, page: str, seed: int) -> None:
        self.owner.submit(self._reset, page, seed).result()

    def step(self) -> None:
        self.owner.submit(self._step).result()

    def close(self) -> None:
        self.owner.submit(self.ctx.close).result()


# ----- report --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import playwright

    version = getattr(playwright, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("playwright")
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "playwright": version,
        "chromium": CHROMIUM_PATH,
    }


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def print_tables(result: dict[str, Any]) -> None:
    console = Console()
    lat = result["latency"]
    table = Table(title=f"Browser episode latency, {lat['page']} (ms; {result['config']['rounds']} rounds)")
    for col in ("measure", "way", "n", "p50", "p99"):
        table.add_column(col)
    for measure in ("reset", "step", "observation"):
        for way, s in lat[measure].items():
            table.add_row(measure, way, str(s["n"]), _ms(s["p50_ms"]), _ms(s["p99_ms"]))
    console.print(table)
    for name, why in lat["skipped"].items():
        console.print(f"[yellow]{name} left out: {why}[/yellow]")
    table = Table(title=f"{result['config']['concurrent']} concurrent episodes (one thread each)")
    for col in (
        "mode",
        "peak Chromium procs",
        "peak browsers",
        "peak drivers",
        "peak RSS MB",
        "PSS MB (all live)",
        "step p50",
        "step p99",
        "steps/s",
        "reset wall s",
    ):
        table.add_column(col)
    for mode, r in result["concurrency"].items():
        p = r["peak"]
        table.add_row(
            mode,
            str(int(p["chromium"])),
            str(int(p["browsers"])),
            str(int(p["drivers"])),
            f"{p['rss_mb']:.0f}",
            f"{r['live']['pss_mb']:.0f}",
            _ms(r["step"]["p50_ms"]),
            _ms(r["step"]["p99_ms"]),
            f"{r['steps_per_s']:.1f}" if r["steps_per_s"] else "-",
            f"{r['reset_wall_s']:.1f}",
        )
    console.print(table)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="latency rounds (one reset each, per way)")
    parser.add_argument("--steps", type=int, default=10, help="steps per latency episode")
    parser.add_argument("--concurrent", type=int, default=16, help="episodes at once")
    parser.add_argument("--conc-steps", type=int, default=5, help="steps per concurrent episode")
    parser.add_argument(
        "--modes", nargs="+", default=["shared", "one each", "one sync thread"], help="concurrency modes to run"
    )
    parser.add_argument(
        "--page", default="click-checkboxes", help="MiniWoB++ page (clicking a checkbox must not end it)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    from agentgym.sandboxes.browser._fileserver import FileServer

    server = FileServer(miniwob_html_dir())  # for the bare ways (ChromiumBrowser serves its own)
    try:
        base_url = server.origin + "/"
        result: dict[str, Any] = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "latency": latency(args, base_url),
            "concurrency": {mode: concurrency(mode, args, base_url) for mode in args.modes},
        }
    finally:
        server.close()
    print_tables(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
