"""Analysis of a pairwise study: Table-5 numbers with intervals, tests and checks.

For each comparison "A vs B" (A = the system named first at creation) and each criterion:
the % of votes for A over all main-item votes of the included participants, a Wilson score
interval, a two-sided exact binomial test against 50 % (scipy.stats.binomtest), Holm's
step-down correction across the four criteria of that comparison, and a cluster-bootstrap
interval that resamples items (votes on one item by several raters are not independent).

Raters are the participants who answered at least one question: invited participants who
never answered are counted apart (``n_invited``), never as raters, and appear in no table.

Checks: position bias (share of votes for the clip on the left, per criterion, binomial
test against 50 %); a per-rater breakdown; the pre-registered exclusions frozen in the study
config (failed anchor trials, inconsistent repeated pairs, optionally incomplete raters)
are applied before everything else and reported. With more than two systems, Bradley-Terry
log-strengths (mean zero, maximum likelihood with a 1e-6 ridge so that undefeated systems
stay finite) with item-bootstrap percentile intervals.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .protocol import (
    CRITERIA,
    CRITERION_BY_KEY,
    CRITERION_KEYS,
    ITEM_CATCH_ANCHOR,
    ITEM_CATCH_REPEAT,
    ITEM_MAIN,
    ExclusionRules,
)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (as fractions)."""
    if n == 0:
        return (float("nan"), float("nan"))
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact bounds at the extremes
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (float(lo), float(hi))


def binomial_p(k: int, n: int) -> float:
    """Two-sided exact binomial test of k successes in n against p = 0.5."""
    if n == 0:
        return float("nan")
    return float(stats.binomtest(k, n, 0.5, alternative="two-sided").pvalue)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaNs are left out of the family and stay NaN)."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(idx)
    order = sorted(idx, key=lambda i: pvalues[i])
    out = [float("nan")] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def bradley_terry(wins: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """Log-strengths theta (mean zero) maximising sum_ij wins[i,j] log sigmoid(theta_i - theta_j)."""
    wins = np.asarray(wins, dtype=float)
    k = wins.shape[0]

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = theta[:, None] - theta[None, :]
        ll = -(wins * np.logaddexp(0.0, -d)).sum()
        s = 1.0 / (1.0 + np.exp(-d))  # sigmoid(theta_i - theta_j)
        g = (wins * (1 - s)).sum(axis=1) - (wins.T * (1 - s.T)).sum(axis=1)
        return -ll + 0.5 * ridge * theta @ theta, -g + ridge * theta

    res = optimize.minimize(nll, np.zeros(k), jac=True, method="L-BFGS-B", options={"maxiter": 1000, "gtol": 1e-10})
    theta = res.x - res.x.mean()
    return theta


@dataclass(frozen=True)
class StudyData:
    config: dict
    responses: pd.DataFrame
    participants: pd.DataFrame  # participant, completed
    database_sha256: str | None = None
    source: str = ""


@dataclass
class AnalysisResult:
    results: pd.DataFrame
    table5: pd.DataFrame
    position_bias: pd.DataFrame
    per_rater: pd.DataFrame
    exclusions: pd.DataFrame
    bradley_terry: pd.DataFrame | None
    summary: dict = field(default_factory=dict)


def apply_exclusions(df: pd.DataFrame, participants: pd.DataFrame, rules: ExclusionRules) -> pd.DataFrame:
    """One row per participant: catch-trial tallies, excluded flag and the reasons."""
    rows = []
    for _, p in participants.iterrows():
        label = p["participant"]
        mine = df[df["participant"] == label]
        anchor = mine[(mine["item_kind"] == ITEM_CATCH_ANCHOR) & mine["criterion"].isin(rules.anchor_criteria)]
        a_fail = int((~anchor["chose_a"]).sum())
        rep = mine[(mine["item_kind"] == ITEM_CATCH_REPEAT) & mine["criterion"].isin(rules.repeat_criteria)]
        first = mine[mine["item_kind"] == ITEM_MAIN].set_index(["item_seq", "criterion"])["chose_a"]
        r_n = r_bad = 0
        for _, r in rep.iterrows():
            key = (int(r["repeat_of_seq"]), r["criterion"])
            if key in first.index:
                r_n += 1
                r_bad += int(bool(first.loc[key]) != bool(r["chose_a"]))
        reasons = []
        if len(anchor) and a_fail / len(anchor) > rules.max_anchor_fail_fraction:
            reasons.append(
                f"preferred the low-passed anchor in {a_fail}/{len(anchor)} anchor judgements "
                f"(> {rules.max_anchor_fail_fraction:.0%})"
            )
        if r_n and r_bad / r_n > rules.max_repeat_inconsistent_fraction:
            reasons.append(
                f"inconsistent on {r_bad}/{r_n} repeated pairs (> {rules.max_repeat_inconsistent_fraction:.0%})"
            )
        if rules.require_complete and not bool(p["completed"]):
            reasons.append("did not complete the study")
        rows.append(
            {
                "participant": label,
                "completed": bool(p["completed"]),
                "n_responses": len(mine),
                "anchor_judgements": len(anchor),
                "anchor_failures": a_fail,
                "repeat_judgements": r_n,
                "repeat_inconsistent": r_bad,
                "excluded": bool(reasons),
                "reasons": "; ".join(reasons),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "participant",
            "completed",
            "n_responses",
            "anchor_judgements",
            "anchor_failures",
            "repeat_judgements",
            "repeat_inconsistent",
            "excluded",
            "reasons",
        ],
    )


def _item_bootstrap(
    votes: pd.DataFrame, n_boot: int, rng: np.random.Generator, confidence: float
) -> tuple[float, float]:
    if votes.empty or n_boot <= 0:
        return (float("nan"), float("nan"))
    per_item = votes.groupby("item_seq")["chose_a"].agg(["sum", "count"]).to_numpy(dtype=float)
    idx = rng.integers(0, len(per_item), size=(n_boot, len(per_item)))
    k = per_item[idx, 0].sum(axis=1)
    n = per_item[idx, 1].sum(axis=1)
    pct = 100.0 * k / n
    a = (1 - confidence) / 2
    return (float(np.quantile(pct, a)), float(np.quantile(pct, 1 - a)))


def _bt_table(
    main: pd.DataFrame, systems: list[str], n_boot: int, rng: np.random.Generator, confidence: float
) -> pd.DataFrame:
    index = {s: i for i, s in enumerate(systems)}
    rows = []
    for crit in CRITERION_KEYS:
        votes = main[main["criterion"] == crit]
        if votes.empty:
            continue
        winner = np.where(votes["chose_a"], votes["system_a"], votes["system_b"])
        loser = np.where(votes["chose_a"], votes["system_b"], votes["system_a"])
        wi = np.array([index[w] for w in winner])
        li = np.array([index[x] for x in loser])
        items = votes["item_seq"].to_numpy()

        def fit(sel: np.ndarray, wi: np.ndarray = wi, li: np.ndarray = li) -> np.ndarray:
            w = np.zeros((len(systems), len(systems)))
            np.add.at(w, (wi[sel], li[sel]), 1.0)
            return bradley_terry(w)

        theta = fit(np.arange(len(votes)))
        uniq = np.unique(items)
        by_item = {u: np.flatnonzero(items == u) for u in uniq}
        boots = []
        for _ in range(max(0, n_boot)):
            pick = rng.choice(uniq, size=len(uniq), replace=True)
            boots.append(fit(np.concatenate([by_item[u] for u in pick])))
        a = (1 - confidence) / 2
        b = np.array(boots) if boots else None
        order = np.argsort(-theta)
        ranks = np.empty(len(systems), dtype=int)
        ranks[order] = np.arange(1, len(systems) + 1)
        for s, i in index.items():
            rows.append(
                {
                    "criterion": crit,
                    "criterion_title": CRITERION_BY_KEY[crit].title,
                    "system": s,
                    "bt_log_strength": float(theta[i]),
                    "ci_lo": float(np.quantile(b[:, i], a)) if b is not None else float("nan"),
                    "ci_hi": float(np.quantile(b[:, i], 1 - a)) if b is not None else float("nan"),
                    "rank": int(ranks[i]),
                    "n_votes": len(votes),
                }
            )
    return pd.DataFrame(rows)


def analyze(data: StudyData, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> AnalysisResult:
    cfg = data.config
    rules = ExclusionRules.from_dict(cfg["exclusion_rules"])
    df = data.responses.copy()
    if df.empty:
        df = pd.DataFrame(
            columns=[
                "participant",
                "item_seq",
                "item_kind",
                "repeat_of_seq",
                "criterion",
                "system_a",
                "system_b",
                "chose_a",
                "choice_side",
            ]
        )
    df["chose_a"] = df["chose_a"].astype(bool)
    # Only participants who answered are raters (issue 14: "14 raters" were reported where 3 had answered).
    answered = set(df["participant"])
    raters = data.participants[data.participants["participant"].isin(answered)].reset_index(drop=True)
    excl = apply_exclusions(df, raters, rules)
    excluded = set(excl.loc[excl["excluded"], "participant"])
    kept = df[~df["participant"].isin(excluded)]
    main = kept[kept["item_kind"] == ITEM_MAIN]
    rng = np.random.default_rng(seed)

    rows = []
    for a_sys, b_sys in cfg["pairs"]:
        pair = main[(main["system_a"] == a_sys) & (main["system_b"] == b_sys)]
        block = []
        for crit in CRITERION_KEYS:
            v = pair[pair["criterion"] == crit]
            n, k = len(v), int(v["chose_a"].sum())
            lo, hi = wilson_interval(k, n, confidence)
            blo, bhi = _item_bootstrap(v, n_boot, rng, confidence)
            block.append(
                {
                    "comparison": f"{a_sys} vs {b_sys}",
                    "system_a": a_sys,
                    "system_b": b_sys,
                    "criterion": crit,
                    "criterion_title": CRITERION_BY_KEY[crit].title,
                    "n_votes": n,
                    "votes_a": k,
                    "pct_a": 100.0 * k / n if n else float("nan"),
                    "wilson_lo": 100.0 * lo,
                    "wilson_hi": 100.0 * hi,
                    "p_value": binomial_p(k, n),
                    "item_boot_lo": blo,
                    "item_boot_hi": bhi,
                    "n_items": int(v["item_seq"].nunique()) if n else 0,
                    "n_raters": int(v["participant"].nunique()) if n else 0,
                }
            )
        for r, ph in zip(block, holm([r["p_value"] for r in block]), strict=True):
            r["p_holm"] = ph
            r["significant_holm_0.05"] = bool(ph < 0.05) if not math.isnan(ph) else False
        rows.extend(block)
    results = pd.DataFrame(rows)

    table5 = []
    for a_sys, b_sys in cfg["pairs"]:
        r = results[(results["system_a"] == a_sys) & (results["system_b"] == b_sys)].set_index("criterion")
        row = {"Model": f"{a_sys} vs {b_sys}"}
        for c in CRITERIA:
            pct = r.loc[c.key, "pct_a"]
            row[c.title] = "" if math.isnan(pct) else f"{pct:.2f}%"
        row["Votes per criterion"] = int(r["n_votes"].max()) if len(r) else 0
        table5.append(row)
    table5_df = pd.DataFrame(table5)

    pb_rows = []
    for crit in (*CRITERION_KEYS, "all"):
        v = main if crit == "all" else main[main["criterion"] == crit]
        n, k = len(v), int((v["choice_side"] == "left").sum())
        lo, hi = wilson_interval(k, n, confidence)
        pb_rows.append(
            {
                "criterion": crit,
                "n_votes": n,
                "votes_left": k,
                "pct_left": 100.0 * k / n if n else float("nan"),
                "wilson_lo": 100.0 * lo,
                "wilson_hi": 100.0 * hi,
                "p_value": binomial_p(k, n),
                "note": "pools the four criteria: votes are not independent" if crit == "all" else "",
            }
        )
    position_bias = pd.DataFrame(pb_rows)

    pr_rows = []
    all_main = df[df["item_kind"] == ITEM_MAIN]
    for label in raters["participant"]:
        mine = all_main[all_main["participant"] == label]
        for a_sys, b_sys in cfg["pairs"]:
            pm = mine[(mine["system_a"] == a_sys) & (mine["system_b"] == b_sys)]
            for crit in CRITERION_KEYS:
                v = pm[pm["criterion"] == crit]
                n, k = len(v), int(v["chose_a"].sum())
                pr_rows.append(
                    {
                        "participant": label,
                        "excluded": label in excluded,
                        "comparison": f"{a_sys} vs {b_sys}",
                        "criterion": crit,
                        "n_votes": n,
                        "votes_a": k,
                        "pct_a": 100.0 * k / n if n else float("nan"),
                        "pct_left": 100.0 * float((v["choice_side"] == "left").mean()) if n else float("nan"),
                    }
                )
    per_rater = pd.DataFrame(pr_rows)

    systems = [s["name"] for s in cfg["systems"]]
    bt = _bt_table(main, systems, n_boot, rng, confidence) if len(systems) > 2 else None

    summary = {
        "protocol_version": cfg["protocol_version"],
        "study": cfg["name"],
        "source": data.source,
        "database_sha256": data.database_sha256,
        "confidence": confidence,
        "n_boot": n_boot,
        "bootstrap_seed": seed,
        "exclusion_rules": rules.to_dict(),
        "n_invited": int(len(data.participants)),
        "n_raters": len(raters),  # answered at least one question
        "n_excluded": len(excluded),
        "n_raters_included": len(raters) - len(excluded),
        "excluded": {r["participant"]: r["reasons"] for _, r in excl[excl["excluded"]].iterrows()},
        "n_responses": int(len(df)),
        "n_responses_dropped_by_exclusion": int(df["participant"].isin(excluded).sum()),
        "n_main_votes_used": int(len(main)),
        "holm_family": "the four criteria of one comparison",
        "systems": systems,
        "pairs": cfg["pairs"],
    }
    return AnalysisResult(results, table5_df, position_bias, per_rater, excl, bt, summary)


def plot_table5(results: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comps = list(dict.fromkeys(results["comparison"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(comps) + 2), 4.2))
    width = 0.8 / len(CRITERIA)
    x = np.arange(len(comps))
    for j, c in enumerate(CRITERIA):
        r = results[results["criterion"] == c.key].set_index("comparison").reindex(comps)
        pct = r["pct_a"].to_numpy(dtype=float)
        err = np.vstack([pct - r["wilson_lo"].to_numpy(dtype=float), r["wilson_hi"].to_numpy(dtype=float) - pct])
        bars = ax.bar(x + (j - (len(CRITERIA) - 1) / 2) * width, pct, width, yerr=err, capsize=3, label=c.title)
        for rect, v in zip(bars, pct, strict=True):
            if not math.isnan(v):
                ax.annotate(
                    f"{v:.1f}", (rect.get_x() + rect.get_width() / 2, 2), ha="center", fontsize=7, color="white"
                )
    ax.axhline(50, color="k", linestyle="--", linewidth=1)
    ax.set_xticks(x, comps)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of votes for the system on the left of 'A vs B'")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right", ncols=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(res: AnalysisResult, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "table5.csv": res.table5,
        "results.csv": res.results,
        "position_bias.csv": res.position_bias,
        "per_rater.csv": res.per_rater,
        "exclusions.csv": res.exclusions,
    }
    if res.bradley_terry is not None:
        files["bradley_terry.csv"] = res.bradley_terry
    written = []
    for name, frame in files.items():
        p = out_dir / name
        frame.to_csv(p, index=False, float_format="%.6g")
        written.append(p)
    p = out_dir / "summary.json"
    p.write_text(json.dumps(res.summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(p)
    p = out_dir / "table5.png"
    plot_table5(
        res.results,
        p,
        f"{res.summary['study']} (protocol {res.summary['protocol_version']}, "
        f"{res.summary['n_raters_included']} raters)",
    )
    written.append(p)
    return written


def load_from_db(url: str, study_ref: str | None) -> StudyData:
    from .create import find_study, study_config
    from .db import make_engine, session_factory
    from .export import database_sha256, progress, response_records

    engine = make_engine(url)
    try:
        with session_factory(engine)() as s:
            st = find_study(s, study_ref)
            records = response_records(s, st)
            parts = progress(s, st)["participants"]
            digest = database_sha256(s)
            cfg = study_config(st)
    finally:
        engine.dispose()
    return StudyData(cfg, pd.DataFrame(records), _participants_frame(parts), digest, url)


def load_from_export(path: str | Path) -> StudyData:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        cfg = doc["study"]["config"]
        records = doc["responses"]
        parts = doc["progress"]["participants"]
    except FileNotFoundError:
        raise ValueError(f"{path}: export file not found") from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a userstudy JSON export ({type(e).__name__}: {e})") from None
    return StudyData(cfg, pd.DataFrame(records), _participants_frame(parts), doc.get("database_sha256"), str(path))


def _participants_frame(parts: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"participant": p["participant"], "completed": bool(p["completed"])} for p in parts],
        columns=["participant", "completed"],
    )
