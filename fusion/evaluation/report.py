"""Results out: a markdown table, the JSON file and a PNG bar chart (matplotlib, Agg backend)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .runner import RunResult

__all__ = ["TABLE_COLUMNS", "markdown_table", "results_json", "write_json", "plot_results", "best_model"]

TABLE_COLUMNS = (("recall@10", "Recall@10"), ("ndcg@10", "NDCG@10"), ("recall@20", "Recall@20"),
                 ("ndcg@20", "NDCG@20"), ("hr@10", "HR@10"), ("mrr@10", "MRR@10"), ("coverage@20", "Cov@20"))


def best_model(results: Sequence[RunResult], metric: str = "ndcg@10") -> str | None:
    """Name of the result with the highest `metric` (the bar to beat)."""
    return max(results, key=lambda r: r.metrics[metric]).name if results else None


def markdown_table(results: Sequence[RunResult]) -> str:
    """One row per model: the metrics, the cold-start slice's Recall@20 (and NDCG@10 when the split held
    out cold products; n/a: no cold item was tested) and fit time; the best value per column in bold."""
    cold_keys = [("recall@20", "Cold R@20")]
    if any("ndcg@10" in r.cold_start for r in results):
        cold_keys.append(("ndcg@10", "Cold N@10"))
    heads = [h for _, h in TABLE_COLUMNS] + [h for _, h in cold_keys] + ["Fit (s)"]
    lines = ["| Model | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(heads)]
    best = {k: max((r.metrics.get(k, 0.0) for r in results), default=0.0) for k, _ in TABLE_COLUMNS}
    best_cold = {k: max((r.cold_start.get(k) or 0.0 for r in results), default=0.0) for k, _ in cold_keys}
    for r in results:
        cells = []
        for k, _ in TABLE_COLUMNS:
            v = r.metrics.get(k, float("nan"))
            cells.append(f"**{v:.4f}**" if v == best[k] and v > 0 else f"{v:.4f}")
        for k, _ in cold_keys:
            c = r.cold_start.get(k)
            cells.append("n/a" if c is None else f"**{c:.4f}**" if c == best_cold[k] and c > 0 else f"{c:.4f}")
        cells.append(f"{r.fit_seconds:.1f}")
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_json(results: Sequence[RunResult], dataset: str, split: str, extra: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """The documented JSON shape plus `fit_seconds`, `eval_seconds`, `params`, `tuning` and `split_info`."""
    return {
        "dataset": dataset, "split": split,
        "metrics": {r.name: dict(r.metrics) for r in results},
        "cold_start": {r.name: dict(r.cold_start) for r in results},
        "fit_seconds": {r.name: round(r.fit_seconds, 3) for r in results},
        "eval_seconds": {r.name: round(r.eval_seconds, 3) for r in results},
        "params": {r.name: r.params for r in results},
        "tuning": {r.name: r.tuning for r in results if r.tuning},
        "best": best_model(results),
        **(extra or {}),
    }


def write_json(data: dict[str, Any], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")


def plot_results(results: Sequence[RunResult], path: str | Path, title: str = "") -> None:
    """Grouped bars of NDCG@10 and Recall@20 per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [r.name for r in results]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names) + 2), 4.0))
    for off, key, label in ((-0.2, "ndcg@10", "NDCG@10"), (0.2, "recall@20", "Recall@20")):
        vals = [r.metrics[key] for r in results]
        bars = ax.bar(x + off, vals, width=0.4, label=label)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
