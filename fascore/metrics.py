"""PAD metrics as pure numpy functions (ISO/IEC 30107-3 terms, bob.pad conventions).

Conventions used throughout:

- labels ``y``: 1 = attack (spoof), 0 = bona fide (live); scores: higher = more likely spoof;
- decision: a presentation is classified as an attack iff ``score >= threshold``;
- APCER: proportion of attack presentations classified bona fide, per PAI species; the reported
  APCER is the maximum over species (ISO/IEC 30107-3). BPCER: proportion of bona fide
  presentations classified as attacks. ACER = (max-APCER + BPCER) / 2;
- HTER = (FAR + FRR) / 2 with all attacks pooled: a biometrics term, **not ISO** PAD, kept because
  the FAS literature reports it;
- the threshold is fixed on the development set (its EER point) and applied to the test set. The
  test set's own EER threshold gives ``hter_oracle``: optimistic, reported only beside it.

Degenerate inputs (one class missing) give NaN, never an exception, and :func:`evaluate` says why
in ``notes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import ndtri  # the normal quantile, without importing scipy.stats (~2 s)

from fascore.data.manifest import LIVE_ATTACK
from fascore.errors import FascoreError

LEVELS = ("frame", "video")
CI_METRICS = ("hter", "auc", "apcer", "bpcer", "acer")
NAN = float("nan")


@dataclass(frozen=True, eq=False)
class ScoreSet:
    """Scores of one split, one row per unit (frame or video), as aligned (n,) arrays.

    ``y`` 1 spoof / 0 live; ``score`` higher = more spoof; ``attack`` PAI species ("none" for
    live); ``video`` presentation id; ``subject`` the person's id (the bootstrap resamples
    subjects when given, videos otherwise). Missing ``attack`` defaults to "attack"/"none" by
    label; missing ``video`` makes every row its own video.
    """

    y: np.ndarray
    score: np.ndarray
    attack: np.ndarray | None = None
    video: np.ndarray | None = None
    subject: np.ndarray | None = None

    def __post_init__(self) -> None:
        y = np.asarray(self.y).reshape(-1)
        if y.size and y.dtype.kind not in "biu":  # a float or text label is never cut to an integer
            raise FascoreError(
                f"labels must be the integers 1 (spoof) and 0 (live), not {y.dtype} values"
            )
        y = y.astype(np.int64)
        score = np.asarray(self.score, dtype=np.float64).reshape(-1)
        n = len(y)
        attack = np.where(y == 1, "attack", LIVE_ATTACK) if self.attack is None else self.attack
        video = np.arange(n).astype(str) if self.video is None else self.video
        attack, video = np.asarray(attack).astype(str), np.asarray(video).astype(str)
        subject = None if self.subject is None else np.asarray(self.subject).astype(str)
        if not (len(score) == len(attack) == len(video) == n) or (
            subject is not None and len(subject) != n
        ):
            raise FascoreError("scores, labels, attacks and videos must have the same length")
        object.__setattr__(self, "subject", subject)
        if not np.isin(y, (0, 1)).all():
            raise FascoreError("labels must be 1 (spoof) or 0 (live)")
        if not np.isfinite(score).all():
            raise FascoreError("scores contain NaN or infinity; check the model's outputs")
        for name, value in (("y", y), ("score", score), ("attack", attack), ("video", video)):
            object.__setattr__(self, name, value)

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> ScoreSet:
        """From a DataFrame with columns ``score``, ``y`` (or ``label`` live|spoof) and
        optionally ``attack`` and ``video``."""
        if "score" not in df or ("y" not in df and "label" not in df):
            raise FascoreError(
                "a score table needs the columns score and y (or label); "
                f"it has {', '.join(map(str, df.columns))}"
            )
        y = df["y"].to_numpy() if "y" in df else (df["label"] == "spoof").to_numpy()
        attack = df["attack"].to_numpy() if "attack" in df else None
        video = df["video"].to_numpy() if "video" in df else None
        subject = None
        if "subject" in df and (df["subject"].astype(str).str.strip() != "").all():
            subject = df["subject"].to_numpy()
        return cls(y, df["score"].to_numpy(), attack, video, subject)

    def __len__(self) -> int:
        return len(self.y)


def _both_classes(y: np.ndarray) -> bool:
    return bool((y == 1).any() and (y == 0).any())


def roc_points(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC over all distinct thresholds, spoof positive: ``(fpr, tpr, thresholds)``, each (K+1,).

    ``thresholds`` descend from ``inf`` (nothing flagged) through every distinct score;
    ``fpr = BPCER`` and ``tpr = 1 - APCER`` (pooled) at each. Same points as scikit-learn's
    ``roc_curve(..., drop_intermediate=False)``. NaN rates for a missing class.
    """
    y, s = np.asarray(y).reshape(-1), np.asarray(s, dtype=np.float64).reshape(-1)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s_sorted))[0], len(s) - 1] if len(s) else np.array([], int)
    tps = np.r_[0, np.cumsum(y_sorted)[last]]
    fps = np.r_[0, last + 1 - tps[1:]]
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr, tpr = fps / fps[-1], tps / tps[-1]
    return fpr, tpr, np.r_[np.inf, s_sorted[last]]


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC, ``P(s_spoof > s_live) + P(tie) / 2`` (Mann-Whitney, ties averaged)."""
    y = np.asarray(y).reshape(-1)
    if not _both_classes(y):
        return NAN
    ranks = _average_ranks(np.asarray(s, dtype=np.float64).reshape(-1))
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(s: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (``scipy.stats.rankdata``'s default)."""
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    below = np.cumsum(counts) - counts
    return (below + (counts + 1) / 2)[inv]


def eer(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """Equal error rate and the threshold at the EER point: ``(eer, threshold)``; NaNs for a
    missing class.

    The rate: APCER (pooled, ``1 - tpr``) falls and BPCER (``fpr``) rises as the threshold drops;
    the EER is linearly interpolated between the two ROC points where ``APCER - BPCER`` changes
    sign (exact when it hits 0, e.g. 0 for separable scores).

    The threshold: every threshold between two adjacent distinct scores makes the same decisions,
    so the EER point is an interval of thresholds, not a number. Of the decision sets (ROC points)
    with the smallest ``|APCER - BPCER|`` (when one above and one below zero tie, the one that
    flags more), the threshold is the **midpoint** of the interval of thresholds that give them:
    halfway between the lowest score they flag and the highest score they do not. Taking an edge
    instead (e.g. the lowest flagged score) would skew the test-set errors towards APCER or BPCER.
    """
    if not _both_classes(np.asarray(y)):
        return NAN, NAN
    fpr, tpr, thr = roc_points(y, s)
    diff = (1.0 - tpr) - fpr  # diff[j]: flag the j highest distinct scores; 1 at j = 0, -1 at K
    k = int(np.argmax(diff <= 0))  # exists: diff is 1 at thr=inf and -1 at the lowest score
    if diff[k] == 0:
        rate = float(fpr[k])
    else:
        a = diff[k - 1] / (diff[k - 1] - diff[k])
        rate = float(fpr[k - 1] + a * (fpr[k] - fpr[k - 1]))
    gap = np.abs(diff)
    best = np.flatnonzero(np.isclose(gap, gap.min(), rtol=0, atol=1e-12))
    if (diff[best] < 0).any():
        best = best[(diff[best] <= 0)]
    lo_j, hi_j = int(best.min()), int(best.max())
    if hi_j == 0:  # flagging nothing is best: any threshold above the highest score
        return rate, float(np.nextafter(thr[1], np.inf))
    upper = thr[max(lo_j, 1)]  # the lowest score the chosen sets flag at the least
    lower = thr[hi_j + 1] if hi_j + 1 < len(thr) else thr[-1]  # the highest one left unflagged
    return rate, float((upper + lower) / 2)


def det_points(
    y: np.ndarray, s: np.ndarray, probit: bool = False, eps: float = 1e-6
) -> tuple[np.ndarray, np.ndarray]:
    """DET curve points ``(apcer, bpcer)`` (pooled attacks), one per ROC threshold.

    With ``probit`` both axes go through the normal quantile ``Phi^-1``, after clipping to
    ``[eps, 1 - eps]`` so 0 and 1 stay finite (the usual DET scale).
    """
    fpr, tpr, _ = roc_points(y, s)
    apcer, bpcer = 1.0 - tpr, fpr
    if probit:
        apcer = ndtri(np.clip(apcer, eps, 1 - eps))
        bpcer = ndtri(np.clip(bpcer, eps, 1 - eps))
    return apcer, bpcer


def _rate(flags: np.ndarray) -> float:
    return float(flags.mean()) if len(flags) else NAN


def error_rates(scores: ScoreSet, threshold: float) -> dict:
    """APCER (max over species), per-species APCER, pooled APCER, BPCER, ACER and HTER (non-ISO)
    at ``threshold`` (attack iff ``score >= threshold``). NaN where a class is missing."""
    if not np.isfinite(threshold):
        per, pooled, bpcer = {}, NAN, NAN
    else:
        is_attack = scores.y == 1
        says_live = scores.score < threshold
        species = np.unique(scores.attack[is_attack])
        per = {str(a): _rate(says_live[is_attack & (scores.attack == a)]) for a in species}
        pooled, bpcer = _rate(says_live[is_attack]), _rate(~says_live[~is_attack])
    apcer = max(per.values()) if per else NAN
    return {
        "apcer": apcer,
        "apcer_per_species": per,
        "apcer_pooled": pooled,
        "bpcer": bpcer,
        "acer": (apcer + bpcer) / 2,
        "hter": (pooled + bpcer) / 2,
    }


def bpcer_at_apcer(
    y: np.ndarray, s: np.ndarray, attack: np.ndarray | None = None, target: float = 0.05
) -> float:
    """BPCER at the highest threshold whose APCER is <= ``target`` (the lowest such BPCER).

    APCER here is the ISO one, the maximum over PAI species given ``attack`` (pooled attacks
    when ``attack`` is None). Candidate thresholds are the distinct scores. NaN for a missing
    class.
    """
    y, s = np.asarray(y).reshape(-1), np.asarray(s, dtype=np.float64).reshape(-1)
    if not _both_classes(y):
        return NAN
    groups = np.zeros(len(y), int) if attack is None else np.unique(attack, return_inverse=True)[1]
    cands = np.unique(s)
    apcer = np.zeros(len(cands))
    for g in np.unique(groups[y == 1]):
        sorted_g = np.sort(s[(y == 1) & (groups == g)])
        apcer = np.maximum(apcer, np.searchsorted(sorted_g, cands, "left") / len(sorted_g))
    t = cands[np.nonzero(apcer <= target + 1e-12)[0][-1]]  # the lowest score is always feasible
    return float((s[y == 0] >= t).mean())


def video_scores(scores: ScoreSet | pd.DataFrame) -> ScoreSet:
    """Video-level scores: one row per video, its score the mean of its frame scores.

    Rows keep the video's label and attack; a video whose frames disagree on either is an error.
    """
    if isinstance(scores, pd.DataFrame):
        scores = ScoreSet.from_frame(scores)
    ids, first, inv = np.unique(scores.video, return_index=True, return_inverse=True)
    count = np.bincount(inv)
    mixed = (scores.y != scores.y[first][inv]) | (scores.attack != scores.attack[first][inv])
    if mixed.any():
        bad = ", ".join(np.unique(scores.video[mixed])[:3])
        raise FascoreError(
            f"video(s) {bad} mix labels or attack species across frames; "
            "fix the manifest's video column (`python -m fascore validate`)."
        )
    mean = np.bincount(inv, weights=scores.score) / count
    subject = None if scores.subject is None else scores.subject[first]
    return ScoreSet(scores.y[first], mean, scores.attack[first], ids, subject)


def at_level(scores: ScoreSet, level: str) -> ScoreSet:
    if level not in LEVELS:
        raise FascoreError(f"unknown scoring level {level!r}; choose one of {LEVELS}")
    return video_scores(scores) if level == "video" else scores


def _group_keys(y: np.ndarray, attack: np.ndarray) -> np.ndarray:
    """One key per (label, PAI species), e.g. "1|print" or "0|none"."""
    return np.char.add(np.char.add(y.astype(str), "|"), attack)


def _video_weights(scores: ScoreSet, n_boot: int, rng: np.random.Generator):
    """Bootstrap counts (n_boot, V) of each video, and each unit's video index (n,).

    With subjects (``scores.subject``): a cluster bootstrap, subjects drawn with replacement and
    each video counted as often as its subject (one subject's videos are not independent; a
    replicate may then miss a species, whose rates are NaN and dropped). Without: videos drawn
    with replacement within (label, PAI species) strata, so every replicate holds both classes
    and every species in their original numbers of videos.
    """
    ids, first, inv = np.unique(scores.video, return_index=True, return_inverse=True)
    if scores.subject is not None:
        people, of_video = np.unique(scores.subject[first], return_inverse=True)
        draws = rng.integers(0, len(people), size=(n_boot, len(people)))
        n_p = len(people)
        flat = (draws + n_p * np.arange(n_boot)[:, None]).ravel()
        counts = np.bincount(flat, minlength=n_boot * n_p).reshape(n_boot, n_p)
        return counts[:, of_video].astype(float), inv
    strata = np.unique(_group_keys(scores.y[first], scores.attack[first]), return_inverse=True)[1]
    weights = np.zeros((n_boot, len(ids)))
    for g in np.unique(strata):
        members = np.nonzero(strata == g)[0]
        m = len(members)
        draws = rng.integers(0, m, size=(n_boot, m)) + m * np.arange(n_boot)[:, None]
        weights[:, members] = np.bincount(draws.ravel(), minlength=n_boot * m).reshape(n_boot, m)
    return weights, inv


def _boot_rates(scores: ScoreSet, threshold: float, weights: np.ndarray, inv: np.ndarray):
    """Replicate APCER (max), BPCER, ACER, HTER at a fixed threshold: (n_boot,) each."""
    groups, g_inv = np.unique(_group_keys(scores.y, scores.attack), return_inverse=True)
    n_v = weights.shape[1]
    wrong = (scores.score >= threshold) != (scores.y == 1)
    # per video and group: number of units and of errors -> (V, G), then weighted sums (B, G)
    units = sparse.coo_matrix((np.ones(len(inv)), (inv, g_inv)), shape=(n_v, len(groups)))
    errors = sparse.coo_matrix((wrong.astype(float), (inv, g_inv)), shape=units.shape)
    tot, err = (units.T @ weights.T).T, (errors.T @ weights.T).T
    attack = np.char.startswith(groups, "1|")
    with np.errstate(invalid="ignore", divide="ignore"):
        apcer = (err[:, attack] / tot[:, attack]).max(axis=1)
        pooled = err[:, attack].sum(1) / tot[:, attack].sum(1)
        bpcer = err[:, ~attack].sum(1) / tot[:, ~attack].sum(1)
    return {
        "apcer": apcer,
        "bpcer": bpcer,
        "acer": (apcer + bpcer) / 2,
        "hter": (pooled + bpcer) / 2,
    }


def _boot_auc(scores: ScoreSet, weights: np.ndarray, inv: np.ndarray, chunk: int = 4_000_000):
    """Replicate AUCs (n_boot,): units weighted by their video's bootstrap count.

    ``AUC = sum_g w_spoof(g) (W_live(< g) + w_live(g) / 2) / (W_spoof W_live)`` over distinct
    scores g in ascending order (ties count one half), computed ``chunk`` cells at a time.
    """
    levels, s_inv = np.unique(scores.score, return_inverse=True)
    shape = (weights.shape[1], len(levels))
    spoof = sparse.csr_matrix((scores.y.astype(float), (inv, s_inv)), shape=shape)
    live = sparse.csr_matrix(((1 - scores.y).astype(float), (inv, s_inv)), shape=shape)
    out = np.empty(len(weights))
    step = max(1, chunk // len(levels))
    for lo in range(0, len(weights), step):
        w = weights[lo : lo + step]
        ws, wl = (spoof.T @ w.T).T, (live.T @ w.T).T
        below = np.cumsum(wl, axis=1) - wl
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo : lo + step] = (ws * (below + wl / 2)).sum(1) / (ws.sum(1) * wl.sum(1))
    return out


def _weighted_levels(scores: ScoreSet, weights: np.ndarray, inv: np.ndarray):
    """Bootstrap-weighted spoof and live counts per distinct score, highest score first: (B, L)."""
    levels, s_inv = np.unique(scores.score, return_inverse=True)
    shape = (weights.shape[1], len(levels))
    spoof = sparse.csr_matrix((scores.y.astype(float), (inv, s_inv)), shape=shape)
    live = sparse.csr_matrix(((1 - scores.y).astype(float), (inv, s_inv)), shape=shape)
    return (spoof.T @ weights.T).T[:, ::-1], (live.T @ weights.T).T[:, ::-1]


def _boot_eer(scores: ScoreSet, weights: np.ndarray, inv: np.ndarray) -> dict[str, np.ndarray]:
    """Replicate ``eer_test`` and ``hter_oracle`` (HTER at each replicate's own EER threshold).

    Per replicate, the weighted ROC (one point per distinct score, as :func:`roc_points`), the
    EER interpolated as :func:`eer` does, and the decisions of :func:`eer`'s threshold: the ROC
    point with the smallest ``|APCER - BPCER|`` (the one that flags more on a tie of signs; the
    midpoint threshold makes exactly its decisions). A distinct score absent from a replicate
    repeats the point before it, which changes none of these values.
    """
    ws, wl = _weighted_levels(scores, weights, inv)
    zero = np.zeros((len(weights), 1))
    tps, fps = np.hstack([zero, np.cumsum(ws, 1)]), np.hstack([zero, np.cumsum(wl, 1)])
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr, fpr = tps / tps[:, -1:], fps / fps[:, -1:]
    diff = (1.0 - tpr) - fpr
    rows = np.arange(len(weights))
    k = np.argmax(diff <= 0, axis=1)
    d_k, d_prev = diff[rows, k], diff[rows, k - 1]
    exact = d_k == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(exact, 0.0, d_prev / (d_prev - d_k))
    eer_b = np.where(exact, fpr[rows, k], fpr[rows, k - 1] + a * (fpr[rows, k] - fpr[rows, k - 1]))
    gap = np.abs(diff)
    best = np.isclose(gap, gap.min(axis=1, keepdims=True), rtol=0, atol=1e-12)
    best = np.where((best & (diff < 0)).any(axis=1, keepdims=True), best & (diff <= 0), best)
    at = np.argmax(best, axis=1)
    oracle = ((1.0 - tpr[rows, at]) + fpr[rows, at]) / 2
    return {"eer_test": eer_b, "hter_oracle": oracle}


def paired_replicates(
    sets: Sequence[ScoreSet], thresholds: Sequence[float], n_boot: int = 300, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """Bootstrap replicates of several models scored on the same units: (n_boot,) per metric.

    Every model sees the very same resampled videos (the strata of :func:`bootstrap_ci`), so
    differences between models are paired. Metrics: ``hter``, ``apcer``, ``bpcer``, ``acer`` at
    each model's fixed threshold, ``auc``, ``eer_test`` and ``hter_oracle``.
    """
    first = sets[0]
    for other in sets[1:]:
        if not np.array_equal(first.video, other.video):
            raise FascoreError("the score sets are not aligned on the same samples")
    weights, inv = _video_weights(first, n_boot, np.random.default_rng(seed))
    out = []
    for s, threshold in zip(sets, thresholds, strict=True):
        reps = _boot_rates(s, threshold, weights, inv)
        reps["auc"] = _boot_auc(s, weights, inv)
        reps.update(_boot_eer(s, weights, inv))
        out.append(reps)
    return out


def bootstrap_ci(
    scores: ScoreSet, threshold: float, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, list[float]]:
    """Percentile CIs ``{"hter_ci": [lo, hi], ...}`` for HTER, AUC, APCER, BPCER, ACER.

    Videos are resampled with replacement within (label, species) strata; the threshold stays
    fixed (the CI covers test-set sampling only). NaN bounds when undefined.
    """
    if n_boot < 1 or not _both_classes(scores.y):
        return {f"{m}_ci": [NAN, NAN] for m in CI_METRICS}
    weights, inv = _video_weights(scores, n_boot, np.random.default_rng(seed))
    reps = _boot_rates(scores, threshold, weights, inv) if np.isfinite(threshold) else {}
    reps["auc"] = _boot_auc(scores, weights, inv)
    q = [50 * (1 - level), 50 * (1 + level)]
    out = {}
    for m in CI_METRICS:
        vals = reps.get(m, np.array([NAN]))
        vals = vals[np.isfinite(vals)]
        out[f"{m}_ci"] = [float(v) for v in np.percentile(vals, q)] if len(vals) else [NAN, NAN]
    return out


def _notes(dev: ScoreSet, test: ScoreSet) -> list[str]:
    notes = []
    for name, part in (("dev", dev), ("test", test)):
        for label, cls in ((0, "live"), (1, "attack")):
            if not (part.y == label).any():
                notes.append(f"the {name} set has no {cls} samples: metrics needing them are NaN")
    return notes


def midpoint_threshold(y: np.ndarray, s: np.ndarray) -> float:
    """The midpoint of the two class means, ``(mean(s | live) + mean(s | spoof)) / 2``.

    The few-shot ``shots`` threshold rule (``fascore.train.regimes``), applied to the k shots'
    scores at the scoring level; NaN when a class is missing. Unlike an EER point, it is
    defined by every score, so perfectly separated shots still give one definite threshold.
    """
    y, s = np.asarray(y).reshape(-1), np.asarray(s, dtype=np.float64).reshape(-1)
    if not _both_classes(y):
        return NAN
    return float((s[y == 0].mean() + s[y == 1].mean()) / 2)


def evaluate(
    dev: ScoreSet | None,
    test: ScoreSet,
    level: str = "frame",
    n_boot: int = 1000,
    seed: int = 0,
    threshold: float | None = None,
) -> dict:
    """PAD evaluation with the threshold fixed at the dev set's EER (or the given ``threshold``,
    when ``dev`` is None) and applied to test.

    Returns plain floats/dicts/lists: ``hter`` (non-ISO, pooled), ``apcer`` (max over species),
    ``apcer_per_species``, ``apcer_pooled``, ``bpcer``, ``acer``, ``auc`` and ``eer_test`` (test),
    ``eer_dev``, ``threshold``, ``hter_oracle`` / ``threshold_oracle`` (test set's own EER
    threshold: optimistic, for comparison only), ``bpcer_at_apcer5`` / ``bpcer_at_apcer1``
    (max-species APCER <= 5 % / 1 % on test), counts, ``<metric>_ci`` (95 % video bootstrap)
    and ``notes`` on degenerate inputs. ``level`` "video" averages frame scores per video.
    """
    test_u = at_level(test, level)
    dev_u = test_u if dev is None else at_level(dev, level)
    eer_dev = NAN
    if dev is not None:
        eer_dev, threshold = eer(dev_u.y, dev_u.score)
    threshold = NAN if threshold is None else float(threshold)
    eer_test, threshold_oracle = eer(test_u.y, test_u.score)
    out = {"level": level, "threshold": threshold, "eer_dev": eer_dev}
    out.update(error_rates(test_u, threshold))
    y, s, a = test_u.y, test_u.score, test_u.attack
    out.update(
        auc=auc(y, s),
        eer_test=eer_test,
        hter_oracle=error_rates(test_u, threshold_oracle)["hter"],
        threshold_oracle=threshold_oracle,
        bpcer_at_apcer5=bpcer_at_apcer(y, s, a, 0.05),
        bpcer_at_apcer1=bpcer_at_apcer(y, s, a, 0.01),
        n_live=int((y == 0).sum()),
        n_attack=int((y == 1).sum()),
        n_videos=len(np.unique(test.video)),
        n_boot=int(n_boot),
    )
    out.update(bootstrap_ci(test_u, threshold, n_boot, seed))
    out["notes"] = _notes(dev_u, test_u) if dev is not None else _notes(test_u, test_u)
    return out
