"""A model that raises in a long `--baselines all` run must not lose the rows of the models that finished."""
from __future__ import annotations

import json

import pytest

import fusion.evaluation.runner as runner
from eval_fixtures import checker_board
from fusion.evaluation import make_split, run_baselines
from kg import EmbeddedStore
from scripts_loader import script


class _Broken:
    """A baseline whose fit raises, as gds_fastrp did on a server with too small a heap."""

    def fit(self, train):
        raise RuntimeError("Procedure call failed: not enough heap for 1.8 GiB")

    def params(self):
        return {}


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """scripts/evaluate.py sets torch's thread count (--threads, default 1): later tests expect it unchanged."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture
def broken_ease(monkeypatch):
    real = runner.make_baseline
    monkeypatch.setattr(runner, "make_baseline",
                        lambda name, dataset=None, **kw: _Broken() if name == "ease" else real(name, dataset, **kw))


def test_a_failing_baseline_is_recorded_and_the_others_still_run(tmp_path, broken_ease):
    graph, _ = checker_board(tmp_path)
    split = make_split(graph, "loo", seed=0)
    failures, seen, logged = [], [], []
    res = run_baselines(graph, split, ["popularity", "ease", "itemknn"], failures=failures,
                        on_result=lambda r: seen.append(r.name), log=logged.append)
    assert [r.name for r in res] == ["popularity", "itemknn"] == seen
    assert [f.name for f in failures] == ["ease"]
    assert "RuntimeError: Procedure call failed" in failures[0].error and failures[0].seconds >= 0
    assert any(m.startswith("FAILED ease") for m in logged)
    assert all(0 <= r.metrics["ndcg@10"] <= 1 for r in res)


def test_without_a_failures_list_the_error_propagates(tmp_path, broken_ease):
    graph, _ = checker_board(tmp_path)
    split = make_split(graph, "loo", seed=0)
    with pytest.raises(RuntimeError, match="not enough heap"):
        run_baselines(graph, split, ["popularity", "ease"], log=lambda m: None)


def test_evaluate_script_keeps_finished_rows_in_the_json_and_exits_nonzero(tmp_path, broken_ease, capsys):
    graph, _ = checker_board(tmp_path)
    EmbeddedStore(tmp_path / "board" / "store").write(graph)
    out = tmp_path / "eval.json"
    rc = script("evaluate").main(["--store", str(tmp_path / "board" / "store"), "--split", "loo",
                                  "--baselines", "popularity,ease,itemknn", "--cold-items", "0",
                                  "--json", str(out)])
    assert rc == 1
    data = json.loads(out.read_text())
    assert set(data["metrics"]) == {"popularity", "itemknn"}
    assert data["complete"] is False and "not enough heap" in data["failed"]["ease"]["error"]
    captured = capsys.readouterr()
    assert "| itemknn" in captured.out  # the table of the finished rows is still printed
    assert "ease failed" in captured.err


def test_evaluate_script_refuses_a_model_of_another_split_before_any_baseline_runs(tmp_path, monkeypatch, capsys):
    graph, _ = checker_board(tmp_path)
    EmbeddedStore(tmp_path / "board" / "store").write(graph)
    model = tmp_path / "model"
    model.mkdir()
    (model / "meta.json").write_text(json.dumps({"split": "random", "seed": 0}))
    monkeypatch.setattr(runner, "make_baseline", lambda *a, **k: pytest.fail("a baseline ran before the check"))
    rc = script("evaluate").main(["--store", str(tmp_path / "board" / "store"), "--split", "loo",
                                  "--baselines", "popularity", "--model", str(model)])
    assert rc == 2
    assert "trained on split 'random'" in capsys.readouterr().err
