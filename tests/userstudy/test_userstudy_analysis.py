"""Analysis on synthetic votes with numbers that can be checked by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from userstudy.analysis import StudyData, analyze, binomial_p, bradley_terry, holm, wilson_interval, write_outputs
from userstudy.protocol import CRITERION_KEYS, ExclusionRules

Z95 = 1.959963984540054


def hand_wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 / (1 + Z95**2 / n) * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n))
    return centre - half, centre + half


def hand_binomial_two_sided(k: int, n: int) -> float:
    tail = sum(math.comb(n, j) for j in range(max(k, n - k), n + 1)) / 2**n
    return min(1.0, 2 * tail)


def config(systems=("GenAU-L", "MAD-2"), pairs=None, rules: ExclusionRules | None = None) -> dict:
    pairs = pairs or [[systems[0], systems[1]]]
    return {
        "protocol_version": "gb-1",
        "name": "synthetic",
        "systems": [{"name": s} for s in systems],
        "pairs": pairs,
        "exclusion_rules": (rules or ExclusionRules()).to_dict(),
    }


def votes_for(
    participants: list[str], n_items: int, k_by_criterion: dict[str, int], a="GenAU-L", b="MAD-2", seq0: int = 0
) -> list[dict]:
    """Exactly k votes for A per criterion, spread over (participant, item) cells; A sits on the
    left on even items."""
    rows = []
    cells = [(p, i) for p in participants for i in range(n_items)]
    for crit, k in k_by_criterion.items():
        for idx, (p, i) in enumerate(cells):
            chose_a = idx < k
            a_left = i % 2 == 0
            rows.append(
                {
                    "participant": p,
                    "item_seq": seq0 + i,
                    "item_kind": "main",
                    "repeat_of_seq": None,
                    "prompt_id": f"pr{i}",
                    "system_a": a,
                    "system_b": b,
                    "a_on_left": a_left,
                    "choice_side": "left" if chose_a == a_left else "right",
                    "chose_a": chose_a,
                    "criterion": crit,
                }
            )
    return rows


def data(rows: list[dict], participants: list[str], cfg: dict | None = None) -> StudyData:
    return StudyData(
        cfg or config(),
        pd.DataFrame(rows),
        pd.DataFrame({"participant": participants, "completed": [True] * len(participants)}),
    )


def test_32_of_50_is_64_percent_with_exact_wilson_and_binomial():
    lo, hi = wilson_interval(32, 50)
    assert (lo, hi) == pytest.approx(hand_wilson(32, 50), abs=1e-12)
    assert (round(100 * lo, 2), round(100 * hi, 2)) == (50.14, 75.86)
    assert binomial_p(32, 50) == pytest.approx(hand_binomial_two_sided(32, 50), rel=1e-10)
    assert round(binomial_p(32, 50), 4) == 0.0649
    rows = votes_for(["p001"], 50, {"realism": 32, "quality": 25, "alignment": 50, "overall": 0})
    res = analyze(data(rows, ["p001"]), n_boot=200, seed=1)
    r = res.results.set_index("criterion")
    assert r.loc["realism", "pct_a"] == 64.0 and r.loc["realism", "n_votes"] == 50 and r.loc["realism", "votes_a"] == 32
    assert r.loc["realism", "wilson_lo"] == pytest.approx(100 * hand_wilson(32, 50)[0], abs=1e-9)
    assert r.loc["realism", "p_value"] == pytest.approx(0.06490864707227217, rel=1e-9)
    assert r.loc["quality", "pct_a"] == 50.0 and r.loc["quality", "p_value"] == pytest.approx(1.0)
    assert r.loc["overall", "pct_a"] == 0.0 and r.loc["overall", "wilson_lo"] == 0.0
    # Holm across the four criteria of the comparison, by hand
    p = [hand_binomial_two_sided(k, 50) for k in (32, 25, 50, 0)]
    order = sorted(range(4), key=lambda i: p[i])
    expected, running = [0.0] * 4, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (4 - rank) * p[i]))
        expected[i] = running
    assert list(r.loc[list(CRITERION_KEYS), "p_holm"]) == pytest.approx(expected, rel=1e-9)
    assert bool(r.loc["alignment", "significant_holm_0.05"]) and not bool(r.loc["realism", "significant_holm_0.05"])
    # item bootstrap brackets the estimate
    assert r.loc["realism", "item_boot_lo"] < 64.0 < r.loc["realism", "item_boot_hi"]


def test_holm_by_hand():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.2, 0.6]) == pytest.approx([0.4, 0.6])
    out = holm([0.01, float("nan"), 0.02])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)


def test_paper_row_genau_l_vs_mad2_from_1000_votes(tmp_path: Path):
    parts = [f"p{i:03d}" for i in range(1, 6)]
    # Table 5: GenAU-L vs MAD-2 = 64.0 / 62.4 / 68.4 / 66.4 % of 250 votes each (5 raters x 50 items)
    k = {"realism": 160, "quality": 156, "alignment": 171, "overall": 166}
    res = analyze(data(votes_for(parts, 50, k), parts), n_boot=100)
    row = res.table5.iloc[0].to_dict()
    assert row == {
        "Model": "GenAU-L vs MAD-2",
        "Realism": "64.00%",
        "Quality": "62.40%",
        "Prompt Alignment": "68.40%",
        "Overall Preference": "66.40%",
        "Votes per criterion": 250,
    }
    assert res.summary["n_main_votes_used"] == 1000 and res.summary["n_excluded"] == 0
    files = write_outputs(res, tmp_path / "out")
    names = {f.name for f in files}
    assert {
        "table5.csv",
        "results.csv",
        "position_bias.csv",
        "per_rater.csv",
        "exclusions.csv",
        "summary.json",
        "table5.png",
    } <= names and "bradley_terry.csv" not in names
    assert (tmp_path / "out" / "table5.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    t5 = (tmp_path / "out" / "table5.csv").read_text().splitlines()
    assert t5[1] == "GenAU-L vs MAD-2,64.00%,62.40%,68.40%,66.40%,250"
    # per-rater: the first 160 cells are raters 1-3 (50 each) and 10 of rater 4
    pr = res.per_rater[res.per_rater["criterion"] == "realism"].set_index("participant")
    assert list(pr["votes_a"]) == [50, 50, 50, 10, 0] and list(pr["n_votes"]) == [50] * 5


def test_position_bias_counts_left_votes():
    parts = ["p001", "p002"]
    rows = votes_for(parts, 10, {c: 0 for c in CRITERION_KEYS})
    for r in rows:  # everyone always clicks the left clip
        r["choice_side"] = "left"
        r["chose_a"] = r["a_on_left"]
    res = analyze(data(rows, parts), n_boot=0)
    pb = res.position_bias.set_index("criterion")
    assert pb.loc["realism", "votes_left"] == 20 and pb.loc["realism", "pct_left"] == 100.0
    assert pb.loc["realism", "p_value"] == pytest.approx(2 / 2**20)
    assert pb.loc["all", "n_votes"] == 80
    # A sat on the left on even items: 10 of 20 votes went to A
    assert res.results.set_index("criterion").loc["realism", "pct_a"] == 50.0


def test_preregistered_exclusions_are_applied_and_reported():
    parts = ["good", "anchorfail", "flipper"]
    rows = votes_for(parts, 10, {c: 10 for c in CRITERION_KEYS})  # the good rater votes A on every item
    first_vote = {p: p == "good" for p in parts}  # the others vote B: excluding them changes the result
    for p in parts:
        for seq in (100, 101):  # two anchor trials: A = reference, B = low-passed
            for c in CRITERION_KEYS:
                rows.append(
                    {
                        "participant": p,
                        "item_seq": seq,
                        "item_kind": "catch_anchor",
                        "repeat_of_seq": None,
                        "prompt_id": "r",
                        "system_a": "reference",
                        "system_b": "anchor-lowpass",
                        "a_on_left": True,
                        "choice_side": "left",
                        "chose_a": not (p == "anchorfail" and c == "quality"),
                        "criterion": c,
                    }
                )
        for seq, orig in ((200, 0), (201, 1)):  # two repeated pairs of items 0 and 1
            for c in CRITERION_KEYS:
                flip = p == "flipper" and c == "overall"
                rows.append(
                    {
                        "participant": p,
                        "item_seq": seq,
                        "item_kind": "catch_repeat",
                        "repeat_of_seq": orig,
                        "prompt_id": f"pr{orig}",
                        "system_a": "GenAU-L",
                        "system_b": "MAD-2",
                        "a_on_left": False,
                        "choice_side": "left",
                        "chose_a": first_vote[p] != flip,
                        "criterion": c,
                    }
                )
    res = analyze(data(rows, parts), n_boot=0)
    ex = res.exclusions.set_index("participant")
    assert not ex.loc["good", "excluded"]
    assert ex.loc["anchorfail", "excluded"] and ex.loc["anchorfail", "anchor_failures"] == 2
    assert "2/2 anchor" in ex.loc["anchorfail", "reasons"]
    assert ex.loc["flipper", "excluded"] and ex.loc["flipper", "repeat_inconsistent"] == 2
    assert ex.loc["good", "repeat_judgements"] == 2 and ex.loc["good", "repeat_inconsistent"] == 0
    assert res.summary["n_excluded"] == 2 and set(res.summary["excluded"]) == {"anchorfail", "flipper"}
    r = res.results.set_index("criterion")
    assert r.loc["realism", "n_votes"] == 10 and r.loc["realism", "pct_a"] == 100.0  # only the good rater
    assert res.summary["n_responses_dropped_by_exclusion"] == 2 * (40 + 8 + 8)
    # a looser pre-registered rule keeps everybody
    loose = config(rules=ExclusionRules(max_anchor_fail_fraction=1.0, max_repeat_inconsistent_fraction=1.0))
    assert analyze(data(rows, parts, loose), n_boot=0).summary["n_excluded"] == 0
    strict = config(rules=ExclusionRules(require_complete=True))
    d = data(rows, parts, strict)
    d.participants.loc[0, "completed"] = False
    assert "did not complete" in analyze(d, n_boot=0).exclusions.set_index("participant").loc["good", "reasons"]


def test_bradley_terry_recovers_known_strengths():
    strengths = np.array([4.0, 2.0, 1.0])
    # wins exactly proportional to p_i / (p_i + p_j): the MLE is log p (up to a constant)
    w = np.array([[0, 4, 4], [2, 0, 2], [1, 1, 0]], dtype=float)
    theta = bradley_terry(w)
    assert theta == pytest.approx(np.log(strengths) - np.log(strengths).mean(), abs=1e-5)
    # the likelihood equations: each system's wins equal its expected wins
    rng = np.random.default_rng(0)
    w = rng.integers(1, 20, size=(4, 4)).astype(float)
    np.fill_diagonal(w, 0)
    th = bradley_terry(w)
    n = w + w.T
    expected = (n / (1 + np.exp(-(th[:, None] - th[None, :])))).sum(axis=1)
    assert expected == pytest.approx(w.sum(axis=1), abs=1e-3)
    # an undefeated system stays finite and on top
    th = bradley_terry(np.array([[0, 5, 5], [0, 0, 3], [0, 2, 0]], dtype=float))
    assert np.all(np.isfinite(th)) and np.argmax(th) == 0


def test_three_systems_give_bradley_terry_with_bootstrap_intervals(tmp_path: Path):
    systems = ("X", "Y", "Z")
    pairs = [["X", "Y"], ["X", "Z"], ["Y", "Z"]]
    parts = ["p1", "p2"]
    rows = []
    for j, (a, b) in enumerate(pairs):
        k = {"X": 16, "Y": 12}[a]  # X beats Y and Z 16/20, Y beats Z 12/20
        rows += votes_for(parts, 10, {c: k for c in CRITERION_KEYS}, a=a, b=b, seq0=10 * j)
    res = analyze(data(rows, parts, config(systems, pairs)), n_boot=20, seed=3)
    bt = res.bradley_terry
    assert bt is not None and set(bt["system"]) == set(systems)
    r = bt[bt["criterion"] == "overall"].set_index("system")
    assert r.loc["X", "rank"] == 1 and r.loc["Z", "rank"] == 3
    assert abs(r["bt_log_strength"].sum()) < 1e-6
    assert all(r["ci_lo"] <= r["bt_log_strength"]) and all(r["bt_log_strength"] <= r["ci_hi"])
    assert len(res.table5) == 3
    assert "bradley_terry.csv" in {f.name for f in write_outputs(res, tmp_path)}


def test_only_raters_who_answered_are_counted(tmp_path: Path):
    """Issue 14: the analysis said "14 raters" where 3 had answered."""
    invited = [f"p{i:03d}" for i in range(1, 15)]
    answered = invited[:3]
    rows = votes_for(answered, 4, {c: 8 for c in CRITERION_KEYS})
    d = StudyData(
        config(rules=ExclusionRules(require_complete=True)),
        pd.DataFrame(rows),
        pd.DataFrame({"participant": invited, "completed": [True] * 3 + [False] * 11}),
    )
    res = analyze(d, n_boot=0)
    s = res.summary
    assert (s["n_invited"], s["n_raters"], s["n_excluded"], s["n_raters_included"]) == (14, 3, 0, 3)
    assert "n_participants" not in s
    assert list(res.exclusions["participant"]) == answered  # never-answered invitees are not "excluded raters"
    assert set(res.per_rater["participant"]) == set(answered)
    assert res.results.set_index("criterion").loc["realism", "n_raters"] == 3
    write_outputs(res, tmp_path / "out")
    assert '"n_raters": 3' in (tmp_path / "out" / "summary.json").read_text()
