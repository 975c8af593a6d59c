"""The report's own tables: regimes with their label budgets, the shots, the MMD tests.

Each function turns what a run folder holds (``final.json``, ``shots.json``, ``alignment.json``)
into a ``DataFrame`` for reading; the pages draw the same facts with their own widgets.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from fascore.eval.compare import METRICS
from fascore.share.figures import fmt_ci, mmd_table
from fascore.share.numbers import p_value_text

#: How each regime picks its threshold and epoch, in words (``final.json`` regime blocks).
REGIME_NOTE = {
    "few-shot": "only the k shots are labelled target data; threshold at the source dev EER",
    "zero-shot": "no target label at all; threshold at the source dev EER",
    "target-dev": "the labelled target dev split also selects the epoch and sets the threshold "
    "(its videos are extra target labels)",
}


def regimes(final: dict | None) -> dict[str, dict]:
    """``{regime: block}`` of a run's ``final.json`` (``few-shot`` or ``zero-shot``, and
    ``target-dev``); a run from before regimes gives its headline under its own regime name."""
    final = final or {}
    blocks = final.get("regimes") or {}
    if not blocks and final.get("target_test"):
        blocks = {final.get("regime") or "few-shot": final}
    return dict(blocks)


def budget_cell(block: dict) -> str:
    """The target labels a regime used, in one phrase: ``none``, ``10 videos (20 images) to
    train`` or ``106 videos: 10 train + 96 dev (select, threshold)``."""
    budget = block.get("label_budget")
    if not budget:
        return "not recorded"
    train = budget.get("train") or {}
    extra = (budget.get("extra") or {}).get("videos", 0)
    uses = [w for w, key in (("select", "selection"), ("threshold", "threshold"))
            if (budget.get(key) or {}).get("videos")]  # fmt: skip
    n_train = train.get("videos", 0)
    if not extra:
        return f"{n_train} videos ({train.get('images', 0)} images) to train" if n_train else "none"
    purposes = ", ".join(uses or ["evaluate"])
    return f"{n_train + extra} videos: {n_train} train + {extra} dev ({purposes})"


def _cell(value: float | None, ci=None) -> str:
    """``figures.fmt_ci`` whose interval never breaks inside: a narrow column wraps the cell
    into the value and, below it, the whole interval."""
    return unbroken(fmt_ci(value, ci))


def unbroken(text: object) -> object:
    """``text`` with a no-break space after each comma of an interval (other values as given)."""
    return text.replace(", ", ",\u00a0") if isinstance(text, str) and text.endswith("]") else text


def _threshold(value: float | None) -> str:
    """A threshold to three significant digits (a target-dev EER point may sit at 0.0004)."""
    return "—" if value is None else f"{value:.3g}"


def regime_metrics(finals: Mapping[str, dict | None], regime: str) -> pd.DataFrame:
    """One row per run that reports ``regime`` (few-shot rows include zero-shot teachers):
    target-test metrics with 95 % intervals, the threshold, its source and the label budget."""
    rows = []
    for name, final in finals.items():
        for label, block in regimes(final).items():
            if label != regime and not (regime == "few-shot" and label == "zero-shot"):
                continue
            test = block.get("target_test") or {}
            row = {"run": name, "regime": label}
            row.update({lab: _cell(test.get(k), test.get(f"{k}_ci")) for k, lab in METRICS})
            row["threshold (from)"] = (
                f"{_threshold(test.get('threshold'))} "
                f"({str(block.get('threshold_from', '?')).replace('_', ' ')})"
            )
            row["epoch"] = block.get("selected_epoch", "—")
            row["target labels"] = budget_cell(block)
            rows.append(row)
    table = pd.DataFrame(rows)
    one_regime = not table.empty and table["regime"].nunique() == 1
    return table.drop(columns="regime") if one_regime else table  # the heading names it


def shots_table(shots: Mapping[str, dict | None]) -> pd.DataFrame:
    """One row per run: the labelled target presentations it trained on (``shots.json``)."""
    rows = []
    for name, record in shots.items():
        record = record or {}
        videos = record.get("videos") or []
        if not videos:
            rows.append({"run": name, "k per class": 0, "drawn": "none: no target label"})
            continue
        more = f" … (+{len(videos) - 4})" if len(videos) > 4 else ""
        per_class = record.get("per_class") or {}
        attacks = record.get("attacks") or {}
        rows.append(
            {
                "run": name,
                "k per class": record.get("k", "—"),
                "drawn": f"{len(videos)} {record.get('unit', 'video')}s, "
                f"{len(record.get('subjects') or [])} subjects, "
                f"{record.get('n_frames', '?')} frames (draw seed {record.get('seed', '?')})",
                "per class": ", ".join(f"{c} {n}" for c, n in per_class.items()) or "—",
                "spoofs by attack": ", ".join(f"{a} {n}" for a, n in attacks.items()) or "—",
                "videos": ", ".join(videos[:4]) + more,
            }
        )
    return pd.DataFrame(rows).fillna("")


def mmd_report_table(alignment: dict | None) -> pd.DataFrame:
    """``figures.mmd_table`` with numbers rounded for reading and each p-value said with its
    number of permutations (``< 0.005 (200 permutations)`` at the test's floor)."""
    table = mmd_table(alignment)
    if table.empty:
        return table
    n_perm = ((alignment or {}).get("sampling") or {}).get("permutations")
    return table.assign(
        **{
            "MMD²": [f"{v:.4f}" if v == v and v is not None else "—" for v in table["MMD²"]],
            "p-value": [p_value_text(p, n_perm) for p in table["p-value"]],
            "proxy A-distance": [
                f"{v:.2f}" if v == v and v is not None else "—" for v in table["proxy A-distance"]
            ],
        }
    )


def delta_rows(deltas: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per student: each metric's ``student − teacher`` with its paired 95 % interval.

    ``deltas[name]`` is ``Comparison.deltas`` of the teacher (first) and that student (second);
    the two runs' own values sit in the metrics tables above."""
    rows = []
    for name, table in deltas.items():
        row = {"student − its teacher": name}
        for r in table.itertuples():
            row[f"Δ {r.label}"] = _cell(r.delta, (r.delta_lo, r.delta_hi))
        rows.append(row)
    return pd.DataFrame(rows)
