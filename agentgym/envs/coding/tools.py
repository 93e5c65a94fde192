"""Repository tools for coding agents; every file operation and command goes through the sandbox.

:class:`RepoTools` is a mixin of ``@tool`` methods for an :class:`~agentgym.env.AgentEnv`
that provides ``self.workspace`` (a :class:`~agentgym.sandboxes.Sandbox` holding the
repository at its workdir). Paths are confined to the repository: absolute paths and
``..`` escapes are refused with a message saying so. Edits of ``.py`` files are parsed
with libcst at once and a syntax error is reported in the same tool result.

Outputs are deterministic (no timings, no temporary paths, no memory addresses), so two
episodes with the same actions see the same text.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from agentgym.envs.coding.harness import (
    HARNESS_ARGV,
    HarnessRun,
    harness_config,
    parse_run,
)
from agentgym.envs.coding.repo import is_test_file, normalize_path
from agentgym.errors import SandboxError
from agentgym.tools import tool

if TYPE_CHECKING:
    from agentgym.sandboxes import ExecResult, Sandbox
    from agentgym.tasks import Task

_Outline = list[tuple[str, str, int, int, cst.CSTNode]]
"""(qualified name, header, first line, last line, node) per class, function and top-level name."""

MAX_WRITE_BYTES = 256 * 1024
MAX_READ_LINES = 400
MAX_MATCHES = 100
MAX_LISTED = 500

# A stdlib-only helper run inside the sandbox (python3 -I -S): list / search the workspace.
FS_SCRIPT = r"""
import json, os, re, sys
req = json.loads(sys.stdin.read())
root = os.path.normpath(req["path"])
SKIP = {"__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".tox", ".venv", "node_modules"}
def walk():
    if os.path.isfile(root):
        yield root
        return
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in SKIP)
        for f in sorted(files):
            yield os.path.normpath(os.path.join(d, f))
if not os.path.lexists(root):
    print(json.dumps({"error": "no such file or directory: " + req["path"]})); sys.exit(0)
if req["op"] == "list":
    out, more = [], 0
    for p in walk():
        if len(out) < req["limit"]: out.append(p)
        else: more += 1
    print(json.dumps({"files": out, "more": more}))
elif req["op"] == "search":
    try:
        rx = re.compile(req["pattern"] if req["regex"] else re.escape(req["pattern"]))
    except re.error as e:
        print(json.dumps({"error": "invalid regular expression: %s" % e})); sys.exit(0)
    hits, more = [], 0
    for p in walk():
        try:
            if os.path.islink(p) or os.path.getsize(p) > 1 << 20: continue
            with open(p, encoding="utf-8") as f: lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for i, line in enumerate(lines, 1):
            if rx.search(line):
                if len(hits) < req["limit"]: hits.append([p, i, line[:200]])
                else: more += 1
    print(json.dumps({"hits": hits, "more": more}))
"""

_NOISE = [
    (re.compile(r"\bin \d+(?:\.\d+)?s\b(?: \(\d+:\d+:\d+\))?"), "in <time>"),
    (re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "0x<addr>"),
    (re.compile(r"/tmp/[\w.\-/]+"), "<tmp>"),
]


def scrub(text: str) -> str:
    """Remove what differs between identical runs (durations, addresses, temp paths)."""
    for rx, repl in _NOISE:
        text = rx.sub(repl, text)
    return text


def syntax_error(path: str, source: str) -> str | None:
    """A one-paragraph libcst syntax error for a ``.py`` file, or None when it parses."""
    if not path.endswith(".py"):
        return None
    try:
        cst.parse_module(source)
    except cst.ParserSyntaxError as e:
        # libcst decides; CPython's own message points at the offending line more precisely.
        try:
            compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        except SyntaxError as py:
            line = (py.text or "").rstrip("\n")
            return f"{path}:{py.lineno}: {py.msg}" + (f"\n    {line}" if line.strip() else "")
        except (ValueError, RecursionError, MemoryError):
            pass
        return f"{path}:{e.editor_line}:{e.editor_column}: {e.message}"
    except (RecursionError, ValueError) as e:  # pathological input
        return f"{path}: could not be parsed ({type(e).__name__})"
    return None


@dataclass
class EditRecord:
    """One edit of a file by a tool (for the ``parseable_edits`` process reward)."""

    turn: int
    path: str
    parses: bool


def _numbered(lines: list[str], start: int) -> str:
    width = len(str(start + len(lines)))
    return "\n".join(f"{i:>{width}}| {line}" for i, line in enumerate(lines, start))


def _outline(module: cst.Module, wrapper: MetadataWrapper) -> _Outline:
    """(qualified name, header, first line, last line, node) for classes, functions and top-level names."""
    positions = wrapper.resolve(PositionProvider)
    out: _Outline = []

    def visit(body: Any, prefix: str, depth: int) -> None:
        for stmt in body:
            if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                pos = positions[stmt]
                name = prefix + stmt.name.value
                if isinstance(stmt, cst.FunctionDef):
                    kw = "async def" if stmt.asynchronous else "def"
                    header = f"{kw} {stmt.name.value}({module.code_for_node(stmt.params)})"
                else:
                    bases = ", ".join(module.code_for_node(a) for a in stmt.bases)
                    header = f"class {stmt.name.value}" + (f"({bases})" if bases else "")
                out.append((name, "  " * depth + header, pos.start.line, pos.end.line, stmt))
                if isinstance(stmt.body, cst.IndentedBlock):
                    visit(stmt.body.body, name + ".", depth + 1)
            elif depth == 0 and isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    targets = []
                    if isinstance(small, cst.Assign):
                        targets = [t.target for t in small.targets]
                    elif isinstance(small, cst.AnnAssign):
                        targets = [small.target]
                    for t in targets:
                        if isinstance(t, cst.Name):
                            pos = positions[stmt]
                            out.append((t.value, f"{t.value} = ...", pos.start.line, pos.end.line, stmt))

    visit(wrapper.module.body, "", 0)
    return out


class RepoTools:
    """``@tool`` methods over ``self.workspace`` (a sandbox holding the repository).

    The host class (an :class:`~agentgym.env.AgentEnv`) provides ``workspace``, ``turn``,
    ``task`` and ``end`` and the per-episode state below, which the tools fill for the process
    rewards. ``submit`` is a terminal tool: the episode ends after the turn that calls it.

    A sandbox failure (:class:`~agentgym.errors.SandboxError`) before the agent's code ran in
    the workspace propagates as an infrastructure error; after ``run_tests`` it ends the
    episode as unresolved (``termination_reason="sandbox_killed"``), since the agent's code
    may have caused it.
    """

    reject_syntax_errors: bool = False
    test_timeout: float = 60.0
    test_paths: list[str]
    """Paths that count as tests (writing one adds a note that tests are not graded)."""
    visible_tests: list[str]
    """What ``run_tests`` runs by default."""
    python_path: str = "."
    agent_ran: bool = False
    """Whether the agent's code has run in the workspace (``run_tests``): from then on a sandbox
    failure ends the episode as unresolved instead of raising an infrastructure error."""
    sandbox_killed: bool = False
    edit_log: list[EditRecord]
    test_log: list[tuple[int, float]]
    """(turn, visible pass fraction) per ``run_tests`` call."""

    @property
    def workspace(self) -> Sandbox:
        """The sandbox holding the repository (provided by the host class)."""
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by AgentEnv; declared here only for the type checker

        @property
        def turn(self) -> int:
            """The turn being stepped."""

        @property
        def task(self) -> Task:
            """The episode's task."""

        def end(self, reason: str = "submitted") -> None:
            """End the episode after this turn."""

    # ----- plumbing -------------------------------------------------------------

    def _sandbox_error(self, error: SandboxError) -> Exception:
        """What a tool raises when the workspace sandbox fails.

        Before the agent's code ran in it: ``error`` itself, an infrastructure failure. After:
        the episode ends (scored 0) and the model is told why, as a tool error.
        """
        if not self.agent_ran:
            return error
        # The agent's code ran in there with the helper's uid: a sandbox that fails now was most
        # likely broken by that code (a process left behind by run_tests). Counting it as an
        # infrastructure failure would let a policy mask a failing episode.
        self.sandbox_killed = True
        self.end("sandbox_killed")
        return RuntimeError(
            f"The sandbox stopped after your code ran in it ({error}). The episode ends and counts as unresolved."
        )

    def _fs(self, op: str, path: str, **req: Any) -> dict[str, Any]:
        try:
            res = self.workspace.exec(
                ["python3", "-I", "-S", "-c", FS_SCRIPT], stdin=json.dumps({"op": op, "path": path, **req}), timeout=30
            )
        except SandboxError as e:
            raise self._sandbox_error(e) from None
        try:
            reply: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            raise RuntimeError(f"{op} failed: {scrub(res.output.strip())[-500:] or 'no output'}") from None
        return reply

    def _read_text(self, path: str) -> str:
        try:
            data = self.workspace.read_file(path)
        except SandboxError as e:
            raise self._sandbox_error(e) from None
        except IsADirectoryError:
            raise ValueError(f"{path} is a directory; use list_files to see its contents") from None
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} does not exist; use list_files to see the repository's files") from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{path} is not a UTF-8 text file") from None

    def _write(self, path: str, content: str) -> str:
        """Write and report; the parse check runs before (reject mode) or after the write."""
        problem = syntax_error(path, content)
        if problem and self.reject_syntax_errors:
            self._record_edit(path, False)
            return f"Error: not written, the result would not parse:\n{problem}\nFix the syntax and try again."
        try:
            self.workspace.write_file(path, content)
        except SandboxError as e:
            raise self._sandbox_error(e) from None
        except IsADirectoryError:
            raise ValueError(f"{path} is a directory") from None
        self._record_edit(path, problem is None)
        notes = []
        if problem:
            notes.append(f"Warning: {path} no longer parses:\n{problem}\nFix it before running the tests.")
        if is_test_file(path, self.test_paths):
            notes.append(
                "Note: test files are restored from the original repository when your fix is graded; "
                "only changes to source files count."
            )
        return "\n".join(notes)

    def _record_edit(self, path: str, parses: bool) -> None:
        self.edit_log.append(EditRecord(self.turn, path, parses))

    # ----- tools -----------------------------------------------------------------

    @tool
    def list_files(self, path: str = ".") -> str:
        """List the files of the repository (or of one directory), recursively.

        Args:
            path: directory relative to the repository root
        """
        path = normalize_path(path)
        res = self._fs("list", path, limit=MAX_LISTED)
        if "error" in res:
            raise FileNotFoundError(res["error"])
        text = "\n".join(res["files"]) or "(no files)"
        if res["more"]:
            text += f"\n[... {res['more']} more files; list a subdirectory to see them]"
        return text

    @tool
    def read_file(self, path: str, start_line: int = 1, end_line: int | None = None) -> str:
        """Show a file with line numbers, optionally only lines start_line..end_line.

        Args:
            path: file path relative to the repository root
            start_line: first line to show (1-based)
            end_line: last line to show (inclusive); default: up to 400 lines from start_line
        """
        path = normalize_path(path)
        lines = self._read_text(path).splitlines()
        if not lines:
            return f"{path} is empty."
        start = max(1, start_line)
        if start > len(lines):
            raise ValueError(f"start_line {start_line} is past the end of {path} ({len(lines)} lines)")
        end = len(lines) if end_line is None else min(end_line, len(lines))
        if end < start:
            raise ValueError(f"end_line {end_line} is before start_line {start_line}")
        end = min(end, start + MAX_READ_LINES - 1)
        text = _numbered(lines[start - 1 : end], start)
        if start > 1 or end < len(lines):
            text += f"\n[{path}: lines {start}-{end} of {len(lines)}]"
        return text

    @tool
    def search(self, pattern: str, path: str = ".", regex: bool = False) -> str:
        """Search the repository's text files for a string (or a Python regular expression).

        Args:
            pattern: the text to find
            path: file or directory to search, relative to the repository root
            regex: treat pattern as a Python regular expression
        """
        if not pattern:
            raise ValueError("pattern is empty")
        path = normalize_path(path)
        res = self._fs("search", path, pattern=pattern, regex=bool(regex), limit=MAX_MATCHES)
        if "error" in res:
            raise ValueError(res["error"])
        if not res["hits"]:
            return f"No matches for {pattern!r} in {path}."
        text = "\n".join(f"{p}:{i}: {line}" for p, i, line in res["hits"])
        if res["more"]:
            text += f"\n[... {res['more']} more matches; narrow the search]"
        return text

    @tool
    def edit_file(self, path: str, old: str, new: str) -> str:
        """Replace the one occurrence of the exact text `old` in a file with `new`.

        Args:
            path: file path relative to the repository root
            old: the exact text to replace, including whitespace; must occur exactly once
            new: the replacement text
        """
        path = normalize_path(path)
        if old == "":
            raise ValueError("old is empty: give the exact text to replace (or use write_file for a new file)")
        text = self._read_text(path)
        count = text.count(old)
        if count == 0:
            hint = ""
            if old.strip() and old.strip() in text:
                hint = " The text occurs with different surrounding whitespace; copy it exactly from read_file."
            raise ValueError(f"old text not found in {path}.{hint} Use read_file or search to copy the exact text.")
        if count > 1:
            lines = [text[: m.start()].count("\n") + 1 for m in re.finditer(re.escape(old), text)][:10]
            raise ValueError(
                f"old text occurs {count} times in {path} (lines {', '.join(map(str, lines))}); "
                "include more surrounding lines so it matches exactly once."
            )
        line = text[: text.index(old)].count("\n") + 1
        notes = self._write(path, text.replace(old, new, 1))
        if notes.startswith("Error"):
            return notes
        return f"Edited {path} at line {line}." + (f"\n{notes}" if notes else "")

    @tool
    def write_file(self, path: str, content: str) -> str:
        """Create or overwrite a file with the given content.

        Args:
            path: file path relative to the repository root
            content: the complete new content of the file
        """
        path = normalize_path(path)
        if path == ".":
            raise ValueError("path names the repository root, not a file")
        if len(content.encode()) > MAX_WRITE_BYTES:
            raise ValueError(f"content is larger than {MAX_WRITE_BYTES} bytes")
        notes = self._write(path, content)
        if notes.startswith("Error"):
            return notes
        return f"Wrote {path} ({len(content.splitlines())} lines)." + (f"\n{notes}" if notes else "")

    @tool
    def delete_file(self, path: str) -> str:
        """Delete a file.

        Args:
            path: file path relative to the repository root
        """
        path = normalize_path(path)
        try:
            res = self.workspace.exec(["rm", "-f", "--", path], timeout=10)
        except SandboxError as e:
            raise self._sandbox_error(e) from None
        if not res.ok:
            raise ValueError(f"could not delete {path}: {res.output.strip()[:300]}")
        return f"Deleted {path}."

    @tool
    def run_tests(self, target: str | None = None) -> str:
        """Run the repository's visible tests with pytest (or one test file or node id) and show the output.

        Args:
            target: a test file or pytest node id, e.g. "tests/test_core.py::test_add"; default: all visible tests
        """
        if target:
            file_part, sep, rest = target.partition("::")
            targets = [normalize_path(file_part) + sep + rest]
        else:
            targets = list(self.visible_tests)
            if not targets:
                return "This repository has no visible tests."
        self.agent_ran = True
        try:
            res, run = self._pytest(targets)
        except SandboxError as e:
            # The agent's code was running in there, and it runs with the helper's uid: a
            # sandbox that dies now was most likely killed by that code. Counting it as an
            # infrastructure failure would let a policy mask a failing episode, so the
            # episode ends here and fails closed.
            self.sandbox_killed = True
            self.end("sandbox_killed")
            return f"The sandbox stopped while your code was running ({e}). The episode ends and counts as unresolved."
        self._record_test_run(run)
        out = scrub("\n".join(line for line in run.output.splitlines() if "generated xml file" not in line).strip())
        if res.timed_out:
            out += f"\n[tests timed out after {self.test_timeout:g} s]"
        return out or "(no output)"

    @tool
    def show_symbol(self, path: str, symbol: str) -> str:
        """Show the source of a class, function or method by qualified name, e.g. "Parser.parse".

        Args:
            path: Python file relative to the repository root
            symbol: qualified name inside the module, e.g. "MyClass.method" or "helper"
        """
        path = normalize_path(path)
        entries, lines = self._symbols(path)
        for name, _, first, last, _ in entries:
            if name == symbol:
                return _numbered(lines[first - 1 : last], first)
        names = ", ".join(n for n, *_ in entries[:40]) or "(none)"
        raise ValueError(f"no symbol {symbol!r} in {path}; its symbols are: {names}")

    @tool
    def list_symbols(self, path: str) -> str:
        """List the classes, functions, methods and top-level names of a Python module with line numbers.

        Args:
            path: Python file relative to the repository root
        """
        path = normalize_path(path)
        entries, _ = self._symbols(path)
        if not entries:
            return f"{path} defines no classes, functions or top-level names."
        return "\n".join(f"{header}  [lines {first}-{last}]" for _, header, first, last, _ in entries)

    @tool(terminal=True)
    def submit(self) -> str:
        """Submit your changes for grading by the hidden tests; this ends the episode."""
        self.end("submitted")
        return "Submitted. Your changes will now be graded by the hidden tests."

    # ----- helpers -----------------------------------------------------------------

    def _symbols(self, path: str) -> tuple[_Outline, list[str]]:
        if not path.endswith(".py"):
            raise ValueError(f"{path} is not a Python file")
        source = self._read_text(path)
        try:
            module = cst.parse_module(source)
        except cst.ParserSyntaxError as e:
            raise ValueError(f"{path} does not parse: line {e.raw_line}: {e.message}") from None
        wrapper = MetadataWrapper(module)
        return _outline(wrapper.module, wrapper), source.splitlines()

    def _pytest(self, targets: list[str]) -> tuple[ExecResult, HarnessRun]:
        """Run ``targets`` with the grader's own harness (same flags, argv, environment, layout)."""
        cfg, _ = harness_config(self.task, targets, grading=False)
        res = self.workspace.exec(HARNESS_ARGV, stdin=json.dumps(cfg) + "\n", timeout=self.test_timeout)
        return res, parse_run(res, cfg["nonce"])

    def _record_test_run(self, run: HarnessRun) -> None:
        """Pass fraction from the harness's own outcomes: a shaping signal only, never used for grading."""
        outcomes = list(run.outcomes.values()) if run.records == 1 else []
        passed = sum(o == "passed" for o in outcomes)
        self.test_log.append((self.turn, passed / len(outcomes) if outcomes else 0.0))
