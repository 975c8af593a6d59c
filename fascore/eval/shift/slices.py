"""Where the shift lives: attributes ranked by the source/target separation they carry, and the
student's error rate per attribute value, both with the subject as the unit.

**Shift per attribute.** For each value v of an attribute seen on both sides (by at least
``MIN_UNITS`` units each), the separation is the linear-kernel MMD² of the L2-normalised
embeddings, ``d_v = |mean_source(z | A=v) - mean_target(z | A=v)|²`` (Gretton et al. 2012: the
squared distance of the mean embeddings). The attribute's statistic is ``T_A = max_v d_v``: when
the domains differ only where A takes one value, that value shows the full shift while the
pooled figure ``d`` (and any other attribute's values, which mix it with the rest) show a
diluted one. The null relabels the domain of whole units (subjects; videos where the manifest
has none), the same relabelling for every attribute: ``p_A`` is the permutation p-value,
``excess = T_A - mean(null)`` (the statistic above what the sampling alone gives), and an
attribute is *above chance* when ``p_A`` times the number of attributes tested (Bonferroni)
stays below ``ALPHA``. Attributes whose values never occur on both sides (a device or session
named per domain) are *confounded with the domain*: the data cannot separate them from it.

**Error slices.** Per attribute value, the rate of wrong decisions among the target test
samples, with a percentile bootstrap CI that resamples the slice's units with replacement (a
unit's frames move together), against the overall rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ALPHA = 0.05
MIN_UNITS = 2
N_PERM = 200
N_BOOT = 1000
RANK_COLUMNS = ["attribute", "status", "top value", "MMD² in it", "pooled MMD²", "excess",
                "p", "p (Bonferroni)", "values on both sides"]  # fmt: skip
SLICE_COLUMNS = ["attribute", "value", "n", "units", "error rate", "ci low", "ci high",
                 "overall", "verdict"]  # fmt: skip


def _unit_sums(z: np.ndarray, units: np.ndarray, rows: np.ndarray, n_units: int):
    """Per unit: the sum of z over ``rows`` (U, D) and their count (U,)."""
    sums = np.zeros((n_units, z.shape[1]))
    np.add.at(sums, units[rows], z[rows])
    return sums, np.bincount(units[rows], minlength=n_units).astype(float)


def _separation(sums: np.ndarray, counts: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Linear MMD² for each source-unit mask in ``src`` (P, U) -> (P,); NaN if a side is empty."""
    a_n, b_n = src @ counts, (~src) @ counts
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = (src @ sums) / a_n[:, None] - ((~src) @ sums) / b_n[:, None]
    return (diff**2).sum(axis=1)


def _unit_roles(units: np.ndarray, roles: np.ndarray, n_units: int) -> np.ndarray:
    is_src = np.zeros(n_units, dtype=bool)
    is_src[units[roles == "source"]] = True
    return is_src


def shift_ranking(
    samples: pd.DataFrame,
    z: np.ndarray,
    attributes: list[str],
    *,
    n_perm: int = N_PERM,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per attribute (``RANK_COLUMNS``), above-chance attributes first, then by excess.

    ``samples``: ``role`` (source | target), ``unit`` and the attribute columns, aligned with the
    embeddings ``z`` (N, D), L2-normalised.
    """
    units = np.unique(samples["unit"].astype(str), return_inverse=True)[1].reshape(-1)
    n_units = int(units.max()) + 1 if len(units) else 0
    roles = samples["role"].to_numpy()
    is_src = _unit_roles(units, roles, n_units)
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(is_src) for _ in range(n_perm)])
    masks = np.vstack([is_src[None], perms])  # row 0: the observed assignment
    pooled = _separation(*_unit_sums(z, units, np.arange(len(z)), n_units), masks)
    rows = [_attribute_row(samples, z, a, units, n_units, masks, pooled) for a in attributes]
    table = pd.DataFrame(rows, columns=RANK_COLUMNS)
    tested = table["status"] != "confounded with the domain"
    table.loc[tested, "p (Bonferroni)"] = np.minimum(1.0, table.loc[tested, "p"] * tested.sum())
    table.loc[tested, "status"] = np.where(
        table.loc[tested, "p (Bonferroni)"] < ALPHA, "above chance", "within chance"
    )
    order = table["status"].map({"above chance": 0, "within chance": 1}).fillna(2)
    return table.assign(_o=order, _e=-table["excess"].fillna(-np.inf)).sort_values(
        ["_o", "_e"], kind="stable").drop(columns=["_o", "_e"]).reset_index(drop=True)  # fmt: skip


def _attribute_row(samples, z, attribute, units, n_units, masks, pooled) -> dict:
    values = samples[attribute].astype(str).to_numpy()
    is_src = masks[0]
    stats, names = [], []
    for value in np.unique(values):
        rows = np.flatnonzero(values == value)
        present = np.unique(units[rows])
        if min(is_src[present].sum(), (~is_src[present]).sum()) < MIN_UNITS:
            continue
        stats.append(_separation(*_unit_sums(z, units, rows, n_units), masks))
        names.append(value)
    row = {
        "attribute": attribute,
        "pooled MMD²": float(pooled[0]),
        "values on both sides": len(names),
    }
    if not stats:
        return {**row, "status": "confounded with the domain"}
    per_value = np.nan_to_num(np.stack(stats), nan=0.0)  # (V, 1 + P)
    best = per_value.max(axis=0)
    null = best[1:]
    top = int(per_value[:, 0].argmax())
    p = (1 + int((null >= best[0] - 1e-12).sum())) / (1 + len(null))
    return {**row, "status": "tested", "top value": names[top], "MMD² in it": float(best[0]),
            "excess": float(best[0] - null.mean()), "p": p}  # fmt: skip


def _boot_rate(wrong_u: np.ndarray, n_u: np.ndarray, n_boot: int, rng) -> tuple[float, float]:
    """95 % percentile CI of sum(wrong) / sum(n) over units resampled with replacement."""
    k = len(n_u)
    if k < MIN_UNITS:
        return np.nan, np.nan
    w = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot)
    rates = (w @ wrong_u) / np.maximum(w @ n_u, 1)
    lo, hi = np.quantile(rates, [0.025, 0.975])
    return float(lo), float(hi)


def error_slices(
    rows: pd.DataFrame,
    wrong: np.ndarray,
    attributes: list[str],
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
    min_n: int = 1,
) -> pd.DataFrame:
    """Error rate per attribute value with a unit-bootstrap CI (``SLICE_COLUMNS``), the slices
    most above the overall rate first. ``rows`` (N: ``unit`` + attributes), ``wrong`` (N,) bool.
    ``verdict``: ``worse`` / ``better`` when the CI excludes the overall rate, else ``as overall``."""
    rng = np.random.default_rng(seed)
    wrong = np.asarray(wrong, dtype=float)
    units = np.unique(rows["unit"].astype(str), return_inverse=True)[1].reshape(-1)
    overall = float(wrong.mean()) if len(wrong) else np.nan
    out = []
    for attribute in attributes:
        values = rows[attribute].astype(str).to_numpy()
        for value in np.unique(values):
            hit = values == value
            if hit.sum() < min_n:
                continue
            u = np.unique(units[hit], return_inverse=True)[1].reshape(-1)
            w_u, n_u = np.bincount(u, wrong[hit]), np.bincount(u).astype(float)
            lo, hi = _boot_rate(w_u, n_u, n_boot, rng)
            verdict = "worse" if lo > overall else ("better" if hi < overall else "as overall")
            out.append([attribute, value, int(hit.sum()), len(n_u), float(wrong[hit].mean()),
                        lo, hi, overall, verdict])  # fmt: skip
    table = pd.DataFrame(out, columns=SLICE_COLUMNS)
    order = table["verdict"].map({"worse": 0, "as overall": 1, "better": 2})
    return table.assign(_o=order, _r=-table["error rate"]).sort_values(
        ["_o", "_r"], kind="stable").drop(columns=["_o", "_r"]).reset_index(drop=True)  # fmt: skip
