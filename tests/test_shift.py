"""The Shift debugger's logic: view state and URL, selections on stored coordinates, the shift
ranking and error slices (closed forms: a planted shift, a null), neighbours, a run's table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fascore.errors import FascoreError
from fascore.eval.shift import selection as sel
from fascore.eval.shift.data import budget_line, load_shift, regime_record
from fascore.eval.shift.neighbours import live_share, nearest, neighbours
from fascore.eval.shift.slices import error_slices, shift_ranking
from tests.fakes import make_fake_store


# -- URL state -----------------------------------------------------------------------------------
def test_ids_compact_to_runs_and_back():
    ids = [7, 1, 2, 3, 3, 10, 11, 40]
    assert sel.compact_ids(ids) == "1-3.7.10-11.40"
    assert sel.expand_ids("1-3.7.10-11.40") == (1, 2, 3, 7, 10, 11, 40)


@pytest.mark.parametrize("text", ["", "a-b", "3-1", "1..2", "1-2-3", f"0-{sel.MAX_IDS}"])
def test_bad_or_huge_id_lists_are_one_readable_error(text):
    with pytest.raises(FascoreError):
        sel.expand_ids(text)


@pytest.mark.parametrize(
    "selection",
    [
        sel.Selection("box", "s", ((-1.5, 2.0), (3.25, 4.0))),
        sel.Selection("lasso", "t", ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 2e-3))),
        sel.Selection("ids", ids=(1, 2, 3, 9)),
        sel.Selection("slice", slice=("attack", "print")),
    ],
)
def test_a_selection_survives_its_url(selection):
    assert sel.decode_selection(sel.encode_selection(selection)) == selection


def test_a_view_survives_its_url_and_garbage_is_reported_not_raised():
    state = sel.ViewState(
        regime="few-shot",
        color="attack",
        filters={"domain": ("phone",), "label": ("spoof", "live")},
        err="teacher_right_student_wrong",
        selection=sel.Selection("box", "s", ((0.0, 1.0), (2.0, 3.0))),
        inspect=12,
    )
    params = sel.to_params(state, "run-1")
    assert params["run"] == "run-1" and len("&".join(f"{k}={v}" for k, v in params.items())) < 200
    back, problems = sel.from_params(params)
    assert back == state and problems == []
    junk, problems = sel.from_params({"sel": "box:s:1,2", "inspect": "x", "err": "rm -rf"})
    assert junk.selection is None and junk.inspect is None and junk.err is None
    assert len(problems) == 3 and all(isinstance(p, str) for p in problems)


# -- selections on stored coordinates -------------------------------------------------------------
def _points(n=400, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "sample": np.arange(n) * 3, "sx": rng.uniform(-5, 5, n), "sy": rng.uniform(-5, 5, n),
        "tx": rng.uniform(-5, 5, n), "ty": rng.uniform(-5, 5, n),
        "attack": rng.choice(["print", "replay", "none"], n),
    })  # fmt: skip


def test_a_box_keeps_exactly_the_points_inside_it():
    pts = _points()
    box = sel.Selection("box", "s", ((1.0, -2.0), (-1.0, 3.0)))  # corners in any order
    inside = (pts.sx.between(-1, 1) & pts.sy.between(-2, 3)).to_numpy()
    assert np.array_equal(sel.selection_mask(pts, box), inside)


def test_a_lasso_is_the_polygon_it_draws():
    pts = _points()
    triangle = ((0.0, 0.0), (4.0, 0.0), (0.0, 4.0))  # x >= 0, y >= 0, x + y <= 4
    closed = ((pts.sx > 0) & (pts.sy > 0) & (pts.sx + pts.sy < 4)).to_numpy()
    assert np.array_equal(sel.selection_mask(pts, sel.Selection("lasso", "s", triangle)), closed)
    square = ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0))
    on_teacher = sel.selection_mask(pts, sel.Selection("lasso", "t", square))
    assert np.array_equal(on_teacher, (pts.tx.abs() < 1).to_numpy() & (pts.ty.abs() < 1).to_numpy())


def test_ids_and_slices_select_their_rows():
    pts = _points()
    assert sel.selection_mask(pts, sel.Selection("ids", ids=(0, 3, 5))).sum() == 2
    mask = sel.selection_mask(pts, sel.Selection("slice", slice=("attack", "print")))
    assert np.array_equal(mask, (pts.attack == "print").to_numpy())
    with pytest.raises(FascoreError):
        sel.selection_mask(pts, sel.Selection("slice", slice=("lighting", "dark")))


def test_the_view_selects_the_selection_within_the_filters_or_nothing():
    pts = _points()
    assert sel.selected_mask(pts, sel.ViewState()) is None
    only_print = sel.ViewState(filters={"attack": ("print",)})
    assert np.array_equal(sel.selected_mask(pts, only_print), (pts.attack == "print").to_numpy())
    box = sel.Selection("box", "s", ((0.0, 0.0), (5.0, 5.0)))
    both = sel.selected_mask(pts, only_print.with_(selection=box))
    assert np.array_equal(
        both, ((pts.attack == "print") & (pts.sx >= 0) & (pts.sy >= 0)).to_numpy()
    )


def test_a_plotly_box_event_becomes_a_box_and_clicks_become_ids():
    event = {"box": [{"x": [2.0, -1.0], "y": [0.5, 3.0]}], "points": []}
    assert sel.from_plotly(event, "s", None) == sel.Selection("box", "s", ((-1.0, 0.5), (2.0, 3.0)))
    clicks = {"points": [{"customdata": [9]}, {"customdata": [4]}], "box": [], "lasso": []}
    assert sel.from_plotly(clicks, "t", None) == sel.Selection("ids", ids=(4, 9))
    assert sel.from_plotly({}, "s", None) is None


def test_error_filters_and_worst_first():
    rows = pd.DataFrame({
        "sample": [0, 1, 2, 3], "y": [1, 1, 0, 0],
        "teacher_right": [True, False, True, None], "student_right": [False, True, False, False],
        "student_score": [0.1, 0.9, 0.95, 0.6], "student_threshold": [0.5] * 4,
    })  # fmt: skip
    mask = sel.filter_mask(rows, sel.ViewState(err="teacher_right_student_wrong"))
    assert mask.tolist() == [True, False, True, False]  # a missing teacher decision is no match
    assert sel.worst_first(rows)["sample"].tolist() == [2, 0, 3, 1]


# -- where the shift lives ------------------------------------------------------------------------
def _attributes(shift: float, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """40 subjects a domain, 8 rows each; per-row lighting, attack and session shared by both
    domains; a subject effect; the target's *dark* rows moved by ``shift`` along one axis."""
    rng = np.random.default_rng(seed)
    rows = []
    for role in ("source", "target"):
        for s in range(40):
            for _ in range(8):
                rows.append({"role": role, "unit": f"{role}/s{s}",
                             "lighting": rng.choice(["dark", "bright"]),
                             "attack": rng.choice(["print", "replay", "none"]),
                             "session": rng.choice(["s1", "s2", "s3"])})  # fmt: skip
    frame = pd.DataFrame(rows)
    units = np.unique(frame["unit"], return_inverse=True)[1]
    z = rng.normal(0, 1, (len(frame), 8)) + rng.normal(0, 0.5, (units.max() + 1, 8))[units]
    dark = ((frame["role"] == "target") & (frame["lighting"] == "dark")).to_numpy()
    z[dark, 0] += shift
    return frame, z


def test_a_shift_planted_in_one_attribute_ranks_it_first():
    frame, z = _attributes(shift=1.5, seed=1)
    table = shift_ranking(frame, z, ["attack", "session", "lighting"], n_perm=200)
    assert table.iloc[0]["attribute"] == "lighting" and table.iloc[0]["top value"] == "dark"
    assert table.iloc[0]["status"] == "above chance"
    # linear MMD² in closed form: the squared distance of the two sides' means within 'dark'
    dark, src = (frame["lighting"] == "dark").to_numpy(), (frame["role"] == "source").to_numpy()
    closed = ((z[dark & src].mean(0) - z[dark & ~src].mean(0)) ** 2).sum()
    assert table.iloc[0]["MMD² in it"] == pytest.approx(closed)
    assert table.iloc[0]["MMD² in it"] > 2 * table.iloc[0]["pooled MMD²"]


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_no_shift_ranks_nothing_above_chance(seed):
    frame, z = _attributes(shift=0.0, seed=seed)
    table = shift_ranking(frame, z, ["attack", "session", "lighting"], n_perm=200, seed=seed)
    assert (table["status"] == "within chance").all(), table


def test_an_attribute_named_per_domain_is_confounded_not_ranked():
    frame, z = _attributes(shift=1.0, seed=5)
    frame["device"] = np.where(frame["role"] == "source", "dslr", "phone")
    table = shift_ranking(frame, z, ["device", "lighting"], n_perm=50)
    assert table.set_index("attribute").loc["device", "status"] == "confounded with the domain"


def test_error_slices_flag_the_planted_slice_and_not_the_null():
    frame, _ = _attributes(shift=0.0, seed=6)
    target = frame[frame["role"] == "target"].reset_index(drop=True)
    rng = np.random.default_rng(0)
    wrong = rng.random(len(target)) < np.where(target["attack"] == "print", 0.8, 0.1)
    table = error_slices(target, wrong, ["attack", "session"]).set_index(["attribute", "value"])
    assert table.loc[("attack", "print"), "verdict"] == "worse"
    assert table.loc[("attack", "print"), "ci low"] > table.loc[("attack", "print"), "overall"]
    null = error_slices(target, rng.random(len(target)) < 0.3, ["session", "lighting"])
    assert (null["verdict"] == "as overall").all()
    everything = error_slices(target, np.ones(len(target), bool), ["session"])
    assert (everything[["ci low", "ci high"]] == 1.0).all().all()


# -- neighbours -----------------------------------------------------------------------------------
def test_neighbours_are_the_most_similar_reference_samples():
    ref = pd.DataFrame({
        "label": ["live", "spoof", "live"], "attack": ["none", "print", "none"],
        "domain": ["a", "a", "a"], "path": list("pqr"),
    })  # fmt: skip
    ref_z = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=float)
    query = np.array([0.8, 0.6])
    near = neighbours(ref, {"student": ref_z}, {"student": query}, k=2)
    assert near["row"].tolist() == [2, 0] and near["label"].tolist() == ["live", "live"]
    assert near["similarity"].tolist() == pytest.approx([0.96, 0.8])
    idx, sim = nearest(np.array([[0.0, 1.0], [1.0, 0.0]]), ref_z, k=3, chunk=1)
    assert idx.tolist() == [[1, 2, 0], [0, 2, 1]] and sim[:, 0].tolist() == [1.0, 1.0]
    shares = live_share(ref["label"].to_numpy(), ref_z, np.array([query, [0.0, 1.0]]), k=2)
    assert shares.tolist() == [1.0, 0.5]


def test_the_reference_is_the_source_training_split_embedded_by_the_models(fake_runs):
    from fascore.eval.shift.reference import build_reference, source_train
    from fascore.train.models import create_model

    student = fake_runs[1]
    rows = source_train(student)
    cfg = student.config()
    manifest = pd.read_csv(cfg["data"][0])
    expected = manifest[(manifest["domain"] == "studio") & (manifest["split"] == "train")]
    assert len(rows) == len(expected) and set(rows["domain"]) == {"studio"}
    assert len(source_train(student, most=4)) <= 4 + 2  # whole videos (2 frames each)
    model = create_model(cfg["model"], input_size=cfg["image_size"])
    ref = build_reference(student, {"student": model})
    z = ref.embeddings["student"]
    assert z.shape[0] == len(rows) and np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-3)
    assert ref.images.shape[0] == len(rows) and ref.images.shape[-1] == 3


# -- one run's table ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake_runs(tmp_path_factory):
    return make_fake_store(tmp_path_factory.mktemp("shift") / "runs", n_students=1)


def test_a_student_run_joins_maps_scores_thresholds_and_manifest(fake_runs):
    teacher, student = fake_runs
    data = load_shift(student)
    s = data.samples
    assert (
        data.models == ["teacher", "student"]
        and len(s) == len(student.read_table("projection")) // 3
    )
    assert s[["tx", "ty", "sx", "sy", "teacher_score", "student_score"]].notna().all().all()
    final = student.read_json("final")
    name, record = regime_record(final, None)
    assert data.thresholds["student"]["target"] == record["target_test"]["threshold"]
    own = student.read_table("scores").set_index("path")["score"]
    assert np.allclose(s["student_score"], own.reindex(s["path"]).to_numpy())
    theirs = teacher.read_table("scores").set_index("path")["score"]
    assert np.allclose(s["teacher_score"], theirs.reindex(s["path"]).to_numpy())
    right = (s["student_score"] >= s["student_threshold"]) == (s["y"] == 1)
    assert (s["student_right"].astype(bool) == right).all()
    assert "subject" in s and s["unit"].str.contains("-s").all()  # subjects are the unit
    assert "attack" in data.attributes and "domain" not in data.attributes
    assert "threshold from source dev" in budget_line(data)  # the regime's rule, beside its budget


def test_a_run_without_analysis_is_one_readable_error(fake_runs, tmp_path):
    import shutil

    copy = type(fake_runs[1])(tmp_path / fake_runs[1].id)
    shutil.copytree(fake_runs[1].path, copy.path)
    copy.file("embeddings").unlink()
    with pytest.raises(FascoreError, match="analysis on"):
        load_shift(copy)


# -- cases in the report --------------------------------------------------------------------------
@pytest.mark.slow  # a store with weights and three Grad-CAMs (~7 s)
def test_a_saved_case_becomes_a_report_section(tmp_path):
    from fascore.share.cases import add_case, read_cases
    from fascore.share.report import build_report

    teacher, student = make_fake_store(tmp_path / "runs", n_students=1, weights=True)
    assert read_cases(student) == []
    samples = load_shift(student).samples
    ids = samples.loc[samples["role"] == "target", "sample"].head(5).tolist()
    params = sel.to_params(
        sel.ViewState(selection=sel.Selection("ids", ids=tuple(ids))), student.id
    )
    case = add_case(student, params, ids)
    assert read_cases(student) == [case] and case["n"] == 5
    html = build_report([teacher, student])
    assert "Cases from the Shift debugger" in html and "Case 1: 5 samples" in html
    assert html.count('alt="sample ') == 5 and 'alt="student"' in html  # thumbnails, CAMs
    assert "Where the shift lives" in html and "error per attribute value" in html
    student.file("cases").write_text("{not json")
    assert read_cases(student) == []
    student.file("cases").write_text('{"cases": [{"params": {"sel": 3}, "samples": "1-2"}]}')
    assert read_cases(student) == [] and student.problem() is None  # unfit: no case, run fine
