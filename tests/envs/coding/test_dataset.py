"""The compact synth dataset: tasks packed as patches against their project, rebuilt exactly on load.

A tiny project (``src/`` layout, a module without a final newline) goes through the real
synth batch; its tasks are packed, loaded back from the folder, from an sdist archive and
from the sdist cache, and the rebuilt tasks are the synthesized ones, byte for byte.
"""

from __future__ import annotations

import gzip
import json
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
from coding_helpers import require_backend

from agentgym.envs.coding import dataset
from agentgym.envs.coding.dataset import DatasetError, apply_patch, load, make_patch, pack, read_records, write_records
from agentgym.envs.coding.synth import SynthConfig
from agentgym.envs.coding.synth.batch import parse_projects, run_batch
from agentgym.tasks import TaskSet
from agentgym.testing import require
from agentgym.validate import validate

PROJECT = {
    "pyproject.toml": '[project]\nname = "tinycalc"\nversion = "1.0"\n',
    "README.md": "tinycalc\n",
    "src/tinycalc/__init__.py": textwrap.dedent("""
        def add(a, b):
            return a + b


        def is_even(n):
            return n % 2 == 0


        def clamp(x, lo, hi):
            if x < lo:
                return lo
            return min(x, hi)""").lstrip(),  # no final newline: the patch must say so
    "tests/test_parity.py": textwrap.dedent("""
        from tinycalc import is_even


        def test_even():
            assert is_even(4)


        def test_odd():
            assert not is_even(3)
    """).lstrip(),
    "tests/test_arith.py": textwrap.dedent("""
        from tinycalc import add, clamp


        def test_add():
            assert add(2, 3) == 5


        def test_clamp():
            assert clamp(-1, 0, 10) == 0
            assert clamp(11, 0, 10) == 10
    """).lstrip(),
}


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    return root


def _sdist(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="tinycalc-1.0")
    return archive


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synth batch over the tiny project (its folder is ``tinycalc``): ``tasks.jsonl`` and ``status/``."""
    root = tmp_path_factory.mktemp("synth")
    folder = _write(root / "tinycalc", PROJECT)
    cfg = SynthConfig(
        operators=["comparison", "change_return"], max_per_operator=3, max_tasks=3, sandbox="none", grade=False
    )
    [status] = run_batch(parse_projects(str(folder)), cfg, root / "out", workers=1)
    assert status["status"] == "done" and status["kept"] >= 2, status
    return root / "out"


@pytest.fixture(scope="module")
def synthesized(batch: Path) -> TaskSet:
    return TaskSet.from_jsonl(batch / "tasks.jsonl")


def _dicts(tasks: TaskSet) -> list[dict[str, Any]]:
    return [t.to_dict() for t in tasks]


def test_pack_then_load_rebuilds_every_task_exactly(batch: Path, synthesized: TaskSet, tmp_path: Path) -> None:
    out = tmp_path / "synth.jsonl.gz"
    report = pack(synthesized, out, status_dir=batch / "status")
    assert report.tasks == len(synthesized) and report.projects == {"tinycalc": str(batch.parent / "tinycalc")}
    assert report.out_bytes == out.stat().st_size < (batch / "tasks.jsonl").stat().st_size / 2

    records = list(read_records(out))
    assert [r["id"] for r in records] == synthesized.ids
    for record, task in zip(records, synthesized, strict=True):
        assert record["hidden_tests"] == sorted(task.verifier["hidden_tests"]) == record["removed"]
        assert record["fix"] == ["tinycalc/__init__.py"]  # the src/ layout is flattened, as synth did
        assert record["patch"].startswith("--- a/tinycalc/__init__.py\n+++ b/tinycalc/__init__.py\n@@ ")
        assert "tinycalc/__init__.py" not in record["issue"] and record["issue"] == task.prompt
        assert record["metadata"] == task.metadata and record["split"] == task.split
        assert "test_parity" not in record["patch"]  # hidden tests are named, not copied
    assert any("\\ No newline at end of file" in r["patch"] for r in records)  # clamp's return is the last line

    loaded = load(out)
    assert loaded.ids == synthesized.ids and _dicts(loaded) == _dicts(synthesized)
    assert loaded.split("test").ids == synthesized.split("test").ids


def test_unpack_gives_back_the_synthesized_file_byte_for_byte(batch: Path, tmp_path: Path) -> None:
    packed, full, picked = tmp_path / "synth.jsonl.xz", tmp_path / "full.jsonl", tmp_path / "sample.jsonl"
    assert dataset.main(["pack", str(batch / "tasks.jsonl"), "--out", str(packed)]) == 0  # status/ found beside it
    assert dataset.is_compact(packed) and not dataset.is_compact(batch / "tasks.jsonl")
    assert dataset.main(["unpack", str(packed), "--out", str(full)]) == 0
    assert full.read_bytes() == (batch / "tasks.jsonl").read_bytes()
    assert dataset.main(["sample", str(packed), "--n", "1", "--seed", "3", "--out", str(picked)]) == 0
    assert len(load(picked)) == 1


def test_from_an_sdist_archive_and_from_the_sdist_cache(batch: Path, synthesized: TaskSet, tmp_path: Path) -> None:
    archive = _sdist(batch.parent / "tinycalc", tmp_path / "tinycalc-1.0.tar.gz")
    packed = tmp_path / "from-archive.jsonl"
    pack(synthesized, packed, sources={"tinycalc": str(archive)})
    assert _dicts(load(packed)) == _dicts(synthesized)

    # a PyPI spec is read from the cache once the archive is there: nothing is downloaded
    cache = tmp_path / "cache"
    (cache / "tinycalc-1.0").mkdir(parents=True)
    (cache / "tinycalc-1.0" / archive.name).write_bytes(archive.read_bytes())
    from_pypi = tmp_path / "from-pypi.jsonl"
    pack(synthesized, from_pypi, sources={"tinycalc": "tinycalc==1.0"}, cache=cache)
    [record, *_] = read_records(from_pypi)
    assert record["sdist"] == "tinycalc==1.0" and record["sdist_sha256"] == dataset._file_sha256(archive)
    assert _dicts(load(from_pypi, cache=cache)) == _dicts(synthesized)
    # or from an archive given for the spec (an offline user's own download)
    assert _dicts(load(from_pypi, cache=tmp_path / "empty", sources={"tinycalc==1.0": archive})) == _dicts(synthesized)

    # an archive that is not the one packed is refused, by sha256
    other = _write(tmp_path / "other" / "tinycalc", {**PROJECT, "README.md": "tinycalc, patched\n"})
    wrong = _sdist(other, tmp_path / "wrong.tar.gz")
    with pytest.raises(DatasetError, match=r"the source .*wrong.tar.gz has sha256 \w+, the dataset expects"):
        load(from_pypi, sources={"tinycalc==1.0": wrong})
    (cache / "tinycalc-1.0" / archive.name).write_bytes(wrong.read_bytes())
    with pytest.raises(DatasetError, match=r"the sdist of tinycalc==1.0 \(.*\) has sha256 \w+, the dataset expects"):
        load(from_pypi, cache=cache)


def test_an_sdist_that_cannot_be_downloaded_names_the_project_and_how_to_prefetch_it(
    batch: Path, synthesized: TaskSet, tmp_path: Path
) -> None:
    packed = tmp_path / "synth.jsonl"
    pack(synthesized, packed, status_dir=batch / "status")
    records = [{**r, "sdist": "agentgym-no-such-project==0.0.1"} for r in read_records(packed)]
    write_records(records, packed)
    with pytest.raises(DatasetError) as err:
        load(packed, cache=tmp_path / "cache")
    message = str(err.value)
    assert message.startswith("cannot download the sdist of agentgym-no-such-project==0.0.1: ")
    assert "python -m agentgym.envs.coding.dataset fetch FILE" in message and "--source" in message


def test_a_tampered_record_names_its_task(batch: Path, synthesized: TaskSet, tmp_path: Path) -> None:
    packed = tmp_path / "synth.jsonl"
    pack(synthesized, packed, status_dir=batch / "status")
    records = list(read_records(packed))
    first = records[0]["id"]

    def tampered(**change: Any) -> Path:
        path = tmp_path / "tampered.jsonl"
        write_records([{**records[0], **change}, *records[1:]], path)
        return path

    lines = records[0]["patch"].split("\n")
    added = next(i for i, line in enumerate(lines) if line.startswith("+") and not line.startswith("+++"))
    context = next(i for i, line in enumerate(lines) if line.startswith(" "))
    edited = [line + "  # edited" if i == added else line for i, line in enumerate(lines)]
    with pytest.raises(DatasetError, match=rf"^task {first}: the rebuilt task differs from the packed one"):
        load(tampered(patch="\n".join(edited)))
    edited = [" something else" if i == context else line for i, line in enumerate(lines)]
    with pytest.raises(DatasetError, match=rf"^task {first}: its patch does not apply: tinycalc/__init__.py: "):
        load(tampered(patch="\n".join(edited)))
    with pytest.raises(DatasetError, match=rf"^task {first}: the rebuilt task differs"):
        load(tampered(pass_to_pass=records[0]["pass_to_pass"][1:]))
    with pytest.raises(DatasetError, match=r"^project tinycalc: the files agentgym reads from .* differ from those"):
        load(tampered(files_sha256="0" * 64))


def test_pack_needs_to_know_each_project_s_source(synthesized: TaskSet, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"the source of project 'tinycalc' is unknown: give the batch's status"):
        pack(synthesized, tmp_path / "x.jsonl")


@pytest.mark.slow
def test_loaded_tasks_validate_oracle_one_noop_zero(batch: Path, synthesized: TaskSet, tmp_path: Path) -> None:
    require_backend("local")
    packed = tmp_path / "synth.jsonl.gz"
    pack(synthesized, packed, status_dir=batch / "status")
    tasks = load(packed)
    report = validate(
        "agentgym/CodeRepair-v0", env_kwargs={"tasks": tasks, "sandbox": "local"}, num_workers=1, progress=False
    )
    assert len(report.checks) == len(synthesized)
    assert report.ok, report.summary()


def _numbers(values: Any) -> str:
    return "\n".join(map(str, values))


@pytest.mark.slow
def test_a_sample_of_the_shipped_dataset_validates(tmp_path: Path) -> None:
    """The acceptance check: 100 shipped tasks drawn by project rebuild from PyPI sdists and validate."""
    require(dataset.SHIPPED.exists(), f"{dataset.SHIPPED} is not built yet (scripts/build_synth_dataset.sh)")
    require_backend("local")
    picked = tmp_path / "sample.jsonl.gz"
    write_records(dataset.sample(list(read_records(dataset.SHIPPED)), 100, seed=0), picked)
    tasks = load(picked)  # the sdists are downloaded once into $AGENTGYM_CACHE/sdists
    assert len(tasks) == 100 and {t.metadata["source"] for t in tasks} == {"synth"}
    report = validate(
        "agentgym/CodeRepair-v0", env_kwargs={"tasks": tasks, "sandbox": "local"}, num_workers=2, progress=False
    )
    assert len(report.checks) == 100
    assert report.ok, report.summary()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"a.py": "x = 1\ny = 2\n"}, {"a.py": "x = 1\ny = 3\n"}),
        ({"a.py": "x = 1\ny = 2"}, {"a.py": "x = 1\ny = 2\n"}),  # a final newline added
        ({"a.py": "x = 1\n"}, {"a.py": "x = 1\nz"}),  # ... and one left out
        ({"a.py": "s = 'a\rb\x0cc'\n" * 9}, {"a.py": "s = 'a\rb\x0cc'\n" * 4 + "t = 1\n" + "s = 'a\rb\x0cc'\n" * 4}),
        ({"a.py": "x = 1\n"}, {"a.py": "x = 1\n", "pkg/new.py": "y = 2\n", "empty.txt": ""}),  # new files
        ({"a.py": _numbers(range(40))}, {"a.py": _numbers([0, *range(2, 30), 99, *range(30, 39)])}),  # two hunks
        # two files (a two-bug task): the first hunk ends right before the next file's "--- a/" header
        ({"a.py": "x = 1\ny = 2\n", "b.py": "z = 3\n"}, {"a.py": "x = 1\n", "b.py": "z = 4\n"}),
        # removed and added lines that look like file headers ("-- x" removed is "--- x")
        ({"a.sql": "-- x\n++ y\nkeep\n", "b.py": "1\n"}, {"a.sql": "keep\n++ z\n", "b.py": "2\n"}),
    ],
)
def test_patches_round_trip(old: dict[str, str], new: dict[str, str]) -> None:
    patch = make_patch(old, new)
    assert apply_patch(old, patch) == new
    assert make_patch(new, new) == ""


def test_a_patch_applies_only_to_its_own_base() -> None:
    patch = make_patch({"a.py": "x = 1\ny = 2\n"}, {"a.py": "x = 1\ny = 3\n"})
    with pytest.raises(ValueError, match=r"^a.py: the patch does not apply at line 1"):
        apply_patch({"a.py": "x = 0\ny = 2\n"}, patch)
    with pytest.raises(ValueError, match=r"^patch changes 'a.py', which the project does not have"):
        apply_patch({}, patch)
    with pytest.raises(ValueError, match=r"^patch line 1: expected a '--- a/PATH' and '\+\+\+ b/PATH' header"):
        apply_patch({"a.py": "x"}, "garbage\n")
    with pytest.raises(ValueError, match=r"^a.py: the hunk at line 1 is cut short"):
        apply_patch({"a.py": "x = 1\ny = 2\n"}, patch.rstrip("\n").rsplit("\n", 1)[0] + "\n")


def test_sample_is_stratified_by_project_and_seeded() -> None:
    records = [{"id": f"{p}-{i}", "project": p} for p, n in (("big", 10), ("mid", 5), ("one", 1)) for i in range(n)]
    picked = dataset.sample(records, 8, seed=1)
    counts = {p: sum(r["project"] == p for r in picked) for p in ("big", "mid", "one")}
    assert sum(counts.values()) == 8 and counts["one"] == 1 and counts["big"] > counts["mid"] >= 1
    assert picked == dataset.sample(records, 8, seed=1) != dataset.sample(records, 8, seed=2)
    assert [records.index(r) for r in picked] == sorted(records.index(r) for r in picked)  # file order kept
    assert len({r["project"] for r in dataset.sample(records, 2, seed=0)}) == 2
    assert dataset.sample(records, 100) == records


def test_compressed_files_are_gzip_or_xz(tmp_path: Path) -> None:
    record = {"format": dataset.FORMAT, "id": "t", "project": "p"}
    for name in ("r.jsonl", "r.jsonl.gz", "r.jsonl.xz"):
        assert write_records([record], tmp_path / name) == 1
        assert list(read_records(tmp_path / name)) == [record]
    assert gzip.decompress((tmp_path / "r.jsonl.gz").read_bytes()) == (tmp_path / "r.jsonl").read_bytes()
    (tmp_path / "full.jsonl").write_text(json.dumps({"id": "t", "prompt": "p"}) + "\n")
    with pytest.raises(DatasetError, match=r"full.jsonl:1: not a compact task record"):
        list(read_records(tmp_path / "full.jsonl"))


def test_the_shipped_dataset_is_built_by_the_script_when_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(dataset, "SHIPPED", tmp_path / "pypi.jsonl.xz")
    with pytest.raises(DatasetError, match=r"pypi.jsonl.xz is missing: build it with scripts/build_synth_dataset.sh"):
        dataset.load_shipped()
