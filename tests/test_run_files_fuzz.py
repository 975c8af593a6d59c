"""Issue 22.5: every run file (status, config, final, alignment, shots, metrics lines) fed with
wrong types, missing keys, huge and nested values. ``fascore runs``, ``report`` and every page
still render, each damaged run is "unreadable: <file>: <field> ...", every other run unchanged."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from fascore.cli import main
from fascore.store import schema
from fascore.store.runs import Run, RunStore
from tests.fakes import make_fake_store

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("overview", "experiment", "train", "compare", "alignment", "gradcam", "report")
DEEP = 200  # levels: under json's recursion limit, over the schema's depth limit
HUGE = "x" * 100_000


def nested(depth: int) -> dict:
    doc: dict = {}
    for _ in range(depth):
        doc = {"a": doc}
    return doc


def _set(key: str, path: str, value) -> Callable[[Run], None]:
    """Set a dotted ``path`` of JSON file ``key`` to ``value`` (a missing parent is created)."""

    def edit(run: Run) -> None:
        doc = json.loads(run.file(key).read_text())
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
        run.file(key).write_text(json.dumps(doc))

    return edit


def _drop(key: str, field: str) -> Callable[[Run], None]:
    def edit(run: Run) -> None:
        doc = json.loads(run.file(key).read_text())
        doc.pop(field)
        run.file(key).write_text(json.dumps(doc))

    return edit


def _text(key: str, text: str) -> Callable[[Run], None]:
    return lambda run: run.file(key).write_text(text)


def _metrics_line(line: str) -> Callable[[Run], None]:
    def edit(run: Run) -> None:
        lines = run.file("metrics").read_text().splitlines()
        run.file("metrics").write_text("\n".join([lines[0], line, *lines[1:]]) + "\n")

    return edit


def _unfinished(edit: Callable[[Run], None]) -> Callable[[Run], None]:
    """A status case: the run must not be finished (a done marker outranks its status)."""

    def both(run: Run) -> None:
        run.unmark_done()
        edit(run)

    return both


# (case name, edit, words the unreadable reason must hold)
CASES = [
    ("status-fraction", _unfinished(_set("status", "progress.fraction", "abc")), "progress.fraction"),
    ("status-state-nested", _unfinished(_set("status", "state", {"a": [1]})), "state is a dict"),
    ("status-huge-message", _unfinished(_set("status", "message", HUGE)), "message is 100000 characters"),
    ("status-deep", _unfinished(_set("status", "progress", nested(DEEP))), "nests deeper"),
    ("status-deeper-than-json", _unfinished(_text("status", "[" * 100_000 + "]" * 100_000)), "cannot be parsed"),
    ("config-no-method", _drop("config", "method"), "config.json lacks method"),
    ("config-seed-text", _set("config", "seed", "0"), "seed is '0'"),
    ("config-sources-text", _set("config", "source_domains", "studio"), "source_domains is 'studio'"),
    ("config-experiment-nested", _set("config", "experiment", nested(5)), "experiment is a dict"),
    ("config-list", _text("config", "[1, 2]"), "config.json holds a list"),
    ("final-hter-text", _set("final", "target_test.hter", "x"), "target_test.hter is 'x'"),
    ("final-auc-list", _set("final", "target_test.auc", [1]), "target_test.auc is a list"),
    ("final-regimes-text", _set("final", "regimes", "nope"), "regimes is 'nope'"),
    ("final-test-list", _set("final", "target_test", [0.1, 0.2]), "target_test is a list"),
    ("final-budget", _set("final", "label_budget.train.videos", "ten"), "label_budget.train.videos"),
    ("final-huge-number", _text("final", '{"target_test": {"hter": ' + "9" * 5000 + "}}"), "cannot be parsed"),
    ("final-ci", _set("final", "target_test.hter_ci", [0.1]), "hter_ci holds 1 items"),
    ("final-null", _text("final", "null"), "final.json holds None"),
    ("final-deep", _set("final", "regimes.few-shot.target_test", nested(DEEP)), "nests deeper"),
    ("alignment-views", _set("alignment", "views", 5), "views is 5"),
    ("alignment-mmd", _set("alignment", "views.aligned.mmd2", "x"), "views.aligned.mmd2 is 'x'"),
    ("alignment-epochs", _set("alignment", "per_epoch", [{"epoch": "one"}]), "per_epoch[0].epoch"),
    ("alignment-counts", _set("alignment", "errors.counts", "many"), "errors.counts is 'many'"),
    ("shots-k", _set("shots", "k", "five"), "k is 'five'"),
    ("metrics-epoch-text", _metrics_line('{"epoch": "1"}'), "metrics.jsonl line 2"),
    ("metrics-list", _metrics_line("[1, 2]"), "metrics.jsonl line 2"),
    ("metrics-auc", _metrics_line('{"epoch": 1, "target_dev": {"auc": "x"}}'), "target_dev.auc"),
    ("metrics-no-epoch", _metrics_line('{"step": 3}'), "metrics.jsonl line 2 lacks epoch"),
]  # fmt: skip


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> tuple[list[Run], dict[str, str], dict[str, list[str]]]:
    """A fake store, ``fascore runs`` as it was, and one damaged copy of a student per case:
    (original runs, {damaged run id: words its reason must hold}, {run id: its row before})."""
    root = tmp_path_factory.mktemp("fuzz") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASCORE_RUNS_DIR", str(root))
        mp.delenv("FASCORE_SHARE", raising=False)
        runs = make_fake_store(root, n_students=3)
        before = _rows()
    student = runs[1]
    for run in runs:  # every result file is there to be damaged
        assert run.has("final") and run.has("alignment") and run.has("metrics")
    reasons = {}
    for name, edit, words in CASES:
        copy = Run(root / f"zz-{name}")
        shutil.copytree(student.path, copy.path)
        edit(copy)
        reasons[copy.id] = words
    return runs, reasons, before


def _rows() -> dict[str, list[str]]:
    """``fascore runs`` as {run id: the row's words} (column widths change with the rows)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["runs"]) == 0
    rows = [line.split() for line in out.getvalue().splitlines() if line.strip()]
    return {r[0]: r for r in rows[1:]}


@pytest.fixture()
def store(fuzzed, monkeypatch) -> RunStore:
    root = fuzzed[0][0].path.parent
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(root))
    monkeypatch.delenv("FASCORE_SHARE", raising=False)
    return RunStore(root)


def test_the_schema_names_the_field_of_each_case(fuzzed, store):
    _, reasons, _ = fuzzed
    for run_id, words in reasons.items():
        why = store.run(run_id).problem()
        assert why is not None and words in why, (run_id, why)
        assert "\n" not in why and len(why) < 300


def test_runs_marks_each_damaged_run_and_leaves_the_others(fuzzed, store):
    runs, reasons, before = fuzzed
    after = _rows()
    for run_id, words in reasons.items():
        row = " ".join(after[run_id])
        assert "unreadable:" in row and words.split()[0] in row, row
    for run in runs:
        assert after[run.id] == before[run.id]


def test_readers_never_see_a_damaged_document(fuzzed, store):
    _, reasons, _ = fuzzed
    for run_id in reasons:
        run = store.run(run_id)
        assert run.state() != "done"
        for key in ("final", "alignment", "shots", "status"):
            doc = run.read_json(key)
            assert doc is None or schema.SCHEMAS[key].problem(doc) is None
        assert all(schema.METRICS_LINE.problem(m) is None for m in run.metrics())


def test_report_leaves_out_every_damaged_run(fuzzed, store, tmp_path):
    runs, reasons, _ = fuzzed
    out = tmp_path / "r.html"
    assert main(["report", *[r.id for r in runs], *reasons, "--out", str(out)]) == 0
    html = out.read_text()
    for run_id in reasons:
        assert f"run {run_id} is unreadable" in html


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_beside_the_damaged_runs(fuzzed, store, page):
    from streamlit.testing.v1 import AppTest

    _, reasons, _ = fuzzed
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120).run()
    at.switch_page(f"../pages/{page}.py").run()
    _no_crash(at, page)
    if page == "overview":
        shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
        assert all(words.split()[0] in shown for words in reasons.values())
    if page in ("compare", "alignment", "gradcam", "report"):
        for run_id in list(reasons)[::4]:  # a deep link straight to a damaged run
            at.query_params["run"] = run_id
            at.switch_page(f"../pages/{page}.py").run()
            _no_crash(at, page)


def _no_crash(at, page: str) -> None:
    assert not at.exception, (page, [e.value for e in at.exception])
    crashed = [e.value for e in at.error if "Something went wrong" in e.value]
    assert not crashed, (page, crashed)
