"""Markdown tables for docs/EVIDENCE.md from the CSVs of ``python -m core report DIR --tables OUT``.

    .venv/bin/python scripts/evidence_tables.py OUT

Every number in EVIDENCE.md's tables comes from these CSVs; intervals are the bootstrap
95 % intervals over cells computed by ``core.summary`` (columns ``<name>_lo``/``<name>_hi``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def ci(frame, column, digits=3):
    """'mean [lo, hi]' strings of one column."""
    fmt = f"{{:.{digits}f}}"
    out = []
    for _, row in frame.iterrows():
        value = row[column]
        low, high = row.get(f"{column}_lo"), row.get(f"{column}_hi")
        text = fmt.format(value) if pd.notna(value) else "n/a"
        if pd.notna(low) and pd.notna(high):
            text += f" [{fmt.format(low)}, {fmt.format(high)}]"
        out.append(text)
    return out


def markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(str(v) for v in row.to_list()) + " |")
    return "\n".join(lines)


def headline(folder: Path) -> str:
    loc = pd.read_csv(folder / "localisation_truth_summary.csv") if (folder / "localisation_truth_summary.csv").is_file() \
        else pd.read_csv(folder / "localisation_summary.csv")
    faith = pd.read_csv(folder / "faithfulness_summary.csv")
    by = "label"
    table = pd.DataFrame({"method": loc["method"], "class": loc[by], "n": loc["n"].astype(int)})
    if "share_evidence" in loc and loc["share_evidence"].notna().any():
        table["evidence share (area)"] = [f"{s} ({a:.3f})" for s, a in zip(ci(loc, "share_evidence"), loc["area_evidence"])]
    table["cell share (area)"] = [f"{s}" for s in ci(loc.assign(share_cell=loc["share_nucleus"] + loc["share_cytoplasm"],
                                                                 share_cell_lo=float("nan"), share_cell_hi=float("nan")),
                                                      "share_cell")]
    table["pointing"] = ci(loc, "pointing", 2)
    merged = table.merge(faith.rename(columns={by: "class"}), on=["method", "class"], how="left", suffixes=("", "_f"))
    table["deletion gain"] = ci(merged, "deletion_gain")
    table["insertion gain"] = ci(merged, "insertion_gain")
    return markdown(table)


def randomisation(folder: Path) -> str:
    rnd = pd.read_csv(folder / "randomisation_summary.csv")
    rnd = rnd.assign(spearman_mean_lo=rnd.get("spearman_lo"), spearman_mean_hi=rnd.get("spearman_hi"))
    table = pd.DataFrame({"method": rnd["method"], "n": rnd["n"], "Spearman (signed maps)": ci(rnd, "spearman_mean"),
                          "Spearman of magnitudes": [f"{v:.3f}" for v in rnd["spearman_abs_mean"]]})
    return markdown(table)


def faithfulness(folder: Path) -> str:
    faith = pd.read_csv(folder / "faithfulness_summary.csv")
    table = pd.DataFrame({"method": faith["method"], "class": faith["label"], "n": faith["n"].astype(int),
                          "deletion AUC": ci(faith, "deletion_auc"), "insertion AUC": ci(faith, "insertion_auc")})
    return markdown(table)


def main(argv=None) -> int:
    folder = Path((argv or sys.argv[1:])[0])
    print("### Headline\n\n" + headline(folder) + "\n\n### Deletion / insertion AUC (log-odds)\n\n" + faithfulness(folder)
          + "\n\n### Randomisation\n\n" + randomisation(folder))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
