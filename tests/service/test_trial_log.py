"""The service's read model of a study: finished trials are read once, through the public storage API."""

from __future__ import annotations

import optuna

from service.trial_log import FULL_READ_ABOVE, TrialLog


class CountingStorage:
    """A real in-memory storage that counts the trial reads the read model makes."""

    def __init__(self) -> None:
        self.inner = optuna.storages.InMemoryStorage()
        self.full_reads = 0  # every trial of the study
        self.open_reads = 0  # only the running and waiting ones
        self.single_reads: list[int] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get_all_trials(self, study_id, deepcopy=True, states=None):
        if states is None:
            self.full_reads += 1
        else:
            self.open_reads += 1
        return self.inner.get_all_trials(study_id, deepcopy=deepcopy, states=states)

    def get_n_trials(self, study_id, state=None):
        raise AssertionError("get_n_trials loads every trial of an RDB study")

    def get_trial(self, trial_id):
        trial = self.inner.get_trial(trial_id)
        self.single_reads.append(trial.number)
        return trial


def _study():
    storage = CountingStorage()
    study = optuna.create_study(storage=storage.inner, study_name="s")
    return storage, study, storage.get_study_id_from_name("s")


def test_finished_trials_are_read_once_and_open_ones_again():
    storage, study, study_id = _study()
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
    # trial 0 was not read again; 1 finished since (read alone); 2 came with the open trials
    assert storage.full_reads == 1 and storage.single_reads == [1]
    study.tell(new, state=optuna.trial.TrialState.FAIL)
    assert [t.state.name for t in log.update(storage, study_id)] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert storage.single_reads == [1, 2]
    log.update(storage, study_id)
    assert storage.single_reads == [1, 2] and storage.full_reads == 1  # all finished: nothing to read


def test_trials_that_started_and_finished_between_two_reads_are_found():
    storage, study, study_id = _study()
    log = TrialLog()
    study.tell(study.ask(), 1.0)
    log.update(storage, study_id)
    for value in (2.0, 3.0):  # never seen open
        study.tell(study.ask(), value)
    running = study.ask()
    trials = log.update(storage, study_id)
    assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE"),
                                                          (3, "RUNNING")]
    assert storage.single_reads == [1, 2] and storage.full_reads == 1
    study.tell(running, 4.0)
    for _ in range(FULL_READ_ABOVE + 1):  # many new trials at once: one query for all of them
        study.tell(study.ask(), 0.0)
    assert len(log.update(storage, study_id)) == FULL_READ_ABOVE + 5 and storage.full_reads == 2
