"""Evaluation harness: leak-free splits, the fit/evaluate loop over every model, the reports, and the baselines
(`fusion.evaluation.baselines`). The full-ranking metrics live in `fusion.metrics` and are re-exported here."""
from ..metrics import (METRIC_NAMES, catalog_coverage, evaluate_cold, evaluate_model, evaluate_scores, hit_rate_at_k, hits_matrix,
                      mrr_at_k, ndcg_at_k, rank_top_k, recall_at_k, top_k)
from .report import TABLE_COLUMNS, best_model, markdown_table, plot_results, results_json, write_json
from .runner import RunFailure, RunResult, check_model_dir, evaluate_recommender, run_baselines, run_fusion, tune, validation_ndcg
from .splits import SPLIT_KINDS, Split, assert_no_leak, make_split, pick_cold_items, read_test_file, time_order

__all__ = [
    "METRIC_NAMES", "catalog_coverage", "evaluate_cold", "evaluate_model", "evaluate_scores", "hit_rate_at_k", "hits_matrix",
    "mrr_at_k", "ndcg_at_k", "rank_top_k", "recall_at_k", "top_k",
    "TABLE_COLUMNS", "best_model", "markdown_table", "plot_results", "results_json", "write_json",
    "RunFailure", "RunResult", "check_model_dir", "evaluate_recommender", "run_baselines", "run_fusion", "tune", "validation_ndcg",
    "SPLIT_KINDS", "Split", "assert_no_leak", "make_split", "pick_cold_items", "read_test_file", "time_order",
]
