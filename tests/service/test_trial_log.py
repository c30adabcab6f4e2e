"""The service's read model of a study: finished trials are read once, through the public storage API."""

from __future__ import annotations

import optuna

from service.trial_log import TrialLog


class CountingStorage:
    """A real in-memory storage that counts the trial reads the read model makes."""

    def __init__(self) -> None:
        self.inner = optuna.storages.InMemoryStorage()
        self.full_reads = 0
        self.single_reads: list[int] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get_all_trials(self, study_id, deepcopy=True, states=None):
        self.full_reads += 1
        return self.inner.get_all_trials(study_id, deepcopy=deepcopy, states=states)

    def get_trial(self, trial_id):
        trial = self.inner.get_trial(trial_id)
        self.single_reads.append(trial.number)
        return trial


def test_finished_trials_are_read_once_and_open_ones_again():
    storage = CountingStorage()
    study = optuna.create_study(storage=storage.inner, study_name="s")
    study_id = storage.get_study_id_from_name("s")
    log = TrialLog()
    done = study.ask()
    study.tell(done, 1.0)
    running = study.ask()
    assert [t.number for t in log.update(storage, study_id)] == [0, 1]
    assert storage.full_reads == 1  # the first read: all trials in one query
    study.tell(running, 2.0)
    new = study.ask()
    trials = log.update(storage, study_id)
    assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "RUNNING")]
    assert storage.full_reads == 1 and storage.single_reads == [1, 2]  # trial 0 was not read again
    study.tell(new, state=optuna.trial.TrialState.FAIL)
    assert [t.state.name for t in log.update(storage, study_id)] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert storage.single_reads == [1, 2, 2]
    log.update(storage, study_id)
    assert storage.single_reads == [1, 2, 2]  # all finished: nothing to read
