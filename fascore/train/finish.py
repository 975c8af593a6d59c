"""The end of a run: each regime's selected weights score the dev and test sets, ``final.json``
holds the PAD metrics of both regimes (the headline's first), then the analysis hook runs on the
headline's weights and the run is marked done."""

from __future__ import annotations

import time

import pandas as pd

from fascore.config import RunConfig
from fascore.data.manifest import read_preprocessing
from fascore.train import regimes
from fascore.train.checkpoint import load_best
from fascore.train.methods import METHODS, Method
from fascore.train.models import FASModel
from fascore.train.scoring import evaluate_scores, predict_scores, score_frame


def headline_regime(cfg: RunConfig) -> str:
    """The regime whose selected weights the run analyses and reports first."""
    return cfg.regime


def weights_key(cfg: RunConfig, regime: str) -> str:
    return "best" if regime == headline_regime(cfg) else "best_alt"


def regime_results(run, cfg, method, data, device, best) -> tuple[dict, pd.DataFrame]:
    """Score dev and test with each regime's selected weights; evaluate each regime.

    Returns ``{display name: results}`` and the headline regime's score table.
    """
    uses_target = METHODS.get(cfg.method).uses_target
    out, tables, shot_tables, head = {}, {}, {}, headline_regime(cfg)
    for regime in sorted(regimes.REGIMES, key=lambda r: r != head):  # the headline first
        epoch = best[regime]["epoch"]
        if epoch not in tables:
            method.model.load_state_dict(load_best(run, weights_key(cfg, regime)))
            method.model.eval()
            predict = lambda r: predict_scores(method.model, data, r, device)  # noqa: E731
            tables[epoch] = score_frame(data, predict)
            shot_tables[epoch] = score_frame(data, predict, parts=("target_train",))
        res = evaluate_scores(data, tables[epoch], cfg, regime, shots=shot_tables[epoch])
        rule = regimes.selection_rule(regime, cfg.select)
        name = regimes.display_name(regime, cfg.shots, uses_target)
        out[name] = {"regime": regime, "selection": rule, "selected_epoch": epoch, **res}
    head_epoch = best[head]["epoch"]
    method.model.load_state_dict(load_best(run))  # analysis uses the headline's weights
    method.model.eval()
    return out, tables[head_epoch]


def models_of(method: Method) -> dict[str, FASModel]:
    """The models the analysis looks at: the teacher and, for a student run, the student."""
    models = {"teacher": method.teacher or method.model}
    if method.role == "student":
        models["student"] = method.model
    return models


def finish(run, cfg, method, data, device, best, hooks) -> None:
    run.update_status(message="scoring the test sets")
    results, scores = regime_results(run, cfg, method, data, device, best)
    run.write_table("scores", scores)
    head = next(iter(results.values()))
    final = {
        "regime": next(iter(results)),
        "selected_epoch": head["selected_epoch"],
        "select": head["selection"],
        "level": cfg.level,
        "threshold_rule": head["threshold_text"] + "; hter_oracle uses the test split's own "
        "EER, reference only",
        "label_budget": head["label_budget"],
        "preprocessing": {m: read_preprocessing(m) for m in cfg.data},
        "shots": data.shots,
        **{k: head[k] for k in ("target_test", "source_test") if k in head},
        "regimes": results,
    }
    run.write_json("final", final)
    hter = (final.get("target_test") or {}).get("hter")
    run.log(f"{final['regime']}: selected epoch {head['selected_epoch']}; target test HTER {hter}")
    if hooks is not None:
        run.update_status(message="analysing embeddings")
        samples, images = data.analysis_samples()
        threshold = (final.get("target_test") or {}).get("threshold")
        hooks.finish(run, models_of(method), samples, images, device=str(device), seed=cfg.seed,
                     threshold=threshold)  # fmt: skip
    run.update_status(
        state="done",
        message="done",
        finished=time.time(),
        progress={**run.progress(), "fraction": 1.0, "eta_s": 0},
    )
    run.mark_done()
