"""training.py, the loop both trainers share: it stops at --steps, on a signal (between steps) or at a non-finite loss
(before saving), and saves on time."""

import os
import signal

import pytest
import torch

from softmax_splatting import signals, training
from softmax_splatting.errors import UsageError


def test_run_steps_stops_at_the_last_step_without_asking_for_another_batch():
    taken, seen = [], []

    def batches():
        for index in range(100):
            taken.append(index)
            yield index

    reached = training.run_steps(3, 6, batches(), lambda batch: {'loss': float(batch)},
                                 lambda step, values: seen.append((step, values['loss'])), lambda: False, show=False)
    assert reached == 6 and seen == [(4, 0.0), (5, 1.0), (6, 2.0)] and taken == [0, 1, 2]
    assert training.run_steps(6, 6, batches(), None, None, lambda: False, show=False) == 6 and taken == [0, 1, 2]


def test_a_signal_ends_the_loop_after_the_current_step():
    with signals.StopSignals() as stop:
        def step(batch):
            if batch == 1:
                os.kill(os.getpid(), signal.SIGTERM)  # recorded, not fatal, while the loop runs
            return {}

        reached = training.run_steps(0, 10, iter(range(10)), step, lambda *_: None, stop, show=False)
    assert reached == 2 and stop.received == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is not stop._record  # the previous handler is back
    error = training.stopped(stop.received, reached, 'run/last.pt')
    assert error.status == 143 and str(error).startswith('SIGTERM: stopped at step 2, saved run/last.pt')


def test_save_schedule_by_steps_and_by_time(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(training.time, 'monotonic', lambda: clock[0])
    schedule = training.SaveSchedule(every_steps=5, every_minutes=1.0)
    assert not schedule.due(3) and schedule.due(5)
    clock[0] += 61
    assert schedule.due(7)
    schedule.saved()
    assert not schedule.due(8)
    assert not training.SaveSchedule(0, 0).due(5)


def test_a_non_finite_value_stops_the_loop_before_anything_is_saved():
    saved = []
    values = iter([1.0, 0.5, float('nan'), 0.2])
    with pytest.raises(training.Diverged) as raised:
        training.run_steps(4, 10, iter(range(10)), lambda batch: {'loss': next(values), 'epe': 1.0},
                           lambda step, _: saved.append(step), lambda: False, show=False)
    assert saved == [5, 6] and raised.value.step == 7  # the step that went wrong never reaches after_step
    assert str(raised.value) == ('training diverged at step 7 (loss nan); stopped without saving (no checkpoint was '
                                 'saved); try a lower --lr')
    raised.value.kept = 'run/last.pt (step 6)'
    assert str(raised.value).endswith('stopped without saving: run/last.pt (step 6) is the last good checkpoint; '
                                      'try a lower --lr')
    assert isinstance(raised.value, UsageError)  # one error: line and exit status 2 through report_errors


def test_weights_that_are_not_finite_are_never_saved():
    good = {'a': torch.ones(3), 'count': torch.tensor(2)}
    training.check_finite(3, good, {'b': torch.zeros(2)})
    with pytest.raises(training.Diverged, match=r'at step 3 \(weight b is not finite\)'):
        training.check_finite(3, good, {'b': torch.tensor([0.0, float('inf')])})


def test_loader_batches_end_their_workers_and_pass_a_worker_error_on_as_one_line(tmp_path):
    from torch.utils.data import DataLoader, Dataset

    class Broken(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            if index == 2:
                raise UsageError(f'{tmp_path / "im2.png"}: not a readable image')
            return torch.tensor(index)

    loaders = []

    def start():
        loaders.append(iter(DataLoader(Broken(), batch_size=1, num_workers=2, worker_init_fn=training.quiet_worker)))
        return loaders[-1]

    batches = training.loader_batches(start)
    assert int(next(batches)) == 0
    batches.close()  # as run_steps does when it returns
    assert not any(worker.is_alive() for worker in loaders[-1]._workers)
    with pytest.raises(UsageError) as raised:
        list(training.loader_batches(start))
    assert str(raised.value) == f'{tmp_path / "im2.png"}: not a readable image'
    assert not any(worker.is_alive() for worker in loaders[-1]._workers)
