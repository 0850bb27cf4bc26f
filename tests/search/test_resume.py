"""Output files, resume after a kill with no lost evaluation, and the evaluate_batch hook."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from search import algorithm_names, get_algorithm, run_search

FAST = {
    "nsga2": {"population_size": 6},
    "evolution": {"population_size": 6, "parent_size": 3, "mutation_size": 3, "crossover_size": 3},
    "optuna-nsga2": {"population_size": 6},
    "optuna-tpe": {"batch_size": 3, "n_startup_trials": 6},
    "random": {"batch_size": 6},
    "linas": {"initial_size": 6, "batch_size": 4, "inner_budget": 80, "inner_settings": {"population_size": 10}},
}
BUDGET = 20


class Killed(BaseException):
    """Stands for the process being killed in the middle of an evaluation."""


class KillOnce:
    """Accuracy that dies on its `at`-th architecture (once), counting completed ones."""

    def __init__(self, fn, at: int | None) -> None:
        self.fn, self.at, self.calls, self.done = fn, at, 0, []

    def __call__(self, archs):
        for a in archs:
            self.calls += 1
            if self.at is not None and self.calls == self.at:
                self.at = None
                raise Killed()
        values = self.fn(archs)
        self.done += list(archs)
        return values


@pytest.mark.parametrize("name", algorithm_names())
def test_resume_after_kill_loses_no_evaluation_and_ends_like_an_uninterrupted_run(
        name, tmp_path, tiny_space, tiny_spec, problem_factory):
    base = problem_factory(tiny_space, tiny_spec).objectives[0].fn
    clean = run_search(problem_factory(tiny_space, tiny_spec, fn=base), get_algorithm(name, **FAST[name]),
                       budget=BUDGET, seed=5, out_dir=tmp_path / "clean")

    acc = KillOnce(base, at=13)
    problem = problem_factory(tiny_space, tiny_spec, fn=acc)
    with pytest.raises(Killed):
        run_search(problem, get_algorithm(name, **FAST[name]), budget=BUDGET, seed=5, out_dir=tmp_path / "run")
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert len(state["evaluations"]) == 12  # every finished evaluation was stored
    resumed = run_search(problem, get_algorithm(name, **FAST[name]), budget=BUDGET, seed=5,
                         out_dir=tmp_path / "run")
    assert len(acc.done) == BUDGET and len(set(acc.done)) == BUDGET  # none lost, none repeated
    cols = ["evaluation", "arch", "accuracy", "size"]
    assert resumed.candidates[cols].equals(clean.candidates[cols])
    assert resumed.hypervolume == clean.hypervolume


def test_output_files(tmp_path, tiny_problem):
    result = run_search(tiny_problem, get_algorithm("optuna-tpe", **FAST["optuna-tpe"]), budget=9, seed=0,
                        out_dir=tmp_path)
    candidates = pd.read_parquet(tmp_path / "candidates.parquet")
    assert candidates.equals(result.candidates)
    front = pd.read_csv(tmp_path / "front.csv")
    assert list(front["arch"]) == list(result.front["arch"])
    hv = pd.read_csv(tmp_path / "hypervolume.csv")
    assert hv["hypervolume"].tolist() == pytest.approx(result.hypervolume)
    assert set(candidates.columns) >= {"evaluation", "arch", "genome", "accuracy", "accuracy_source", "size",
                                       "size_source", "flops", "feasible", "eval_seconds", "elapsed_s"}
    assert json.loads(candidates["genome"][0]) == tiny_problem.space.encode(result.archs[0]).tolist()
    assert not list(tmp_path.glob(".*.tmp"))

    import optuna  # the study can be opened from its file, as optuna-dashboard does

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna.journal")))
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) >= 9


def test_resume_refuses_other_settings_and_extends_a_finished_search(tmp_path, tiny_problem, counting,
                                                                    problem_factory, tiny_space, tiny_spec):
    run_search(tiny_problem, get_algorithm("random", batch_size=4), budget=8, seed=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="different seed"):
        run_search(tiny_problem, get_algorithm("random", batch_size=4), budget=8, seed=1, out_dir=tmp_path)
    with pytest.raises(ValueError, match="different algorithm"):
        run_search(tiny_problem, get_algorithm("nsga2"), budget=8, seed=0, out_dir=tmp_path)
    acc = counting(tiny_problem.objectives[0].fn)
    problem = problem_factory(tiny_space, tiny_spec, three=True, fn=acc)
    longer = run_search(problem, get_algorithm("random", batch_size=4), budget=12, seed=0, out_dir=tmp_path)
    assert len(longer.candidates) == 12 and len(acc.archs) == 4  # only the 4 new ones evaluated


def test_evaluate_batch_hook_gets_whole_batches_and_gives_the_same_result(tiny_problem):
    batches = []

    def evaluate_batch(problem, archs):
        batches.append(len(archs))
        return {o.name: o.fn(archs) for o in problem.expensive}

    hooked = run_search(tiny_problem, get_algorithm("nsga2", population_size=6), budget=15, seed=2,
                        evaluate_batch=evaluate_batch)
    plain = run_search(tiny_problem, get_algorithm("nsga2", population_size=6), budget=15, seed=2)
    assert batches[0] == 6 and sum(batches) == 15 and max(batches) <= 6
    assert hooked.candidates["arch"].equals(plain.candidates["arch"])
    assert hooked.candidates["accuracy"].equals(plain.candidates["accuracy"])

    with pytest.raises(ValueError, match="no values for objective 'accuracy'"):
        run_search(tiny_problem, get_algorithm("random"), budget=3, seed=0, evaluate_batch=lambda p, a: {})


def test_progress_reports_each_evaluation(tiny_problem):
    seen = []
    result = run_search(tiny_problem, get_algorithm("random", batch_size=4), budget=6, seed=0,
                        progress=lambda n, budget, hv: seen.append((n, budget, hv)))
    assert [s[0] for s in seen] == list(range(1, 7)) and {s[1] for s in seen} == {6}
    assert np.allclose([s[2] for s in seen], result.hypervolume)
