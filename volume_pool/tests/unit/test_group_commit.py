"""Group commit: concurrent submits share batches, each gets its own
result, and a failing batch fails only its own callers."""

import concurrent.futures
import threading

import pytest

from volume_pool import group_commit


class Recorder:
    """A run_batch that records its batches and can be held mid-batch."""

    def __init__(self, fail_on=None):
        self.batches = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_on = fail_on

    def __call__(self, items):
        self.batches.append(list(items))
        self.entered.set()
        self.release.wait(10)
        if self.fail_on in items:
            raise ValueError('bad item %s' % self.fail_on)
        return [item * 10 for item in items]


def test_a_caller_alone_runs_a_batch_of_one():
    run = Recorder()
    committer = group_commit.GroupCommitter(run)
    assert committer.submit(1) == 10
    assert committer.submit(2) == 20
    assert run.batches == [[1], [2]]


def submit_while_held(committer, run, items):
    """Hold the first batch, queue ``items`` behind it, then release."""
    run.release.clear()
    with concurrent.futures.ThreadPoolExecutor(len(items) + 1) as ex:
        first = ex.submit(committer.submit, 0)
        assert run.entered.wait(10)
        futures = [ex.submit(committer.submit, item) for item in items]
        # Every waiter is queued before the held batch ends.
        while len(committer._queue) < len(items):
            threading.Event().wait(0.01)
        run.release.set()
        return first, futures


def test_callers_arriving_during_a_batch_form_the_next_one():
    run = Recorder()
    committer = group_commit.GroupCommitter(run)
    first, futures = submit_while_held(committer, run, [1, 2, 3, 4, 5])
    assert first.result(10) == 0
    assert [f.result(10) for f in futures] == [10, 20, 30, 40, 50]
    assert run.batches[0] == [0]
    assert sorted(run.batches[1]) == [1, 2, 3, 4, 5]
    assert len(run.batches) == 2


def test_batches_are_capped_at_max_batch():
    run = Recorder()
    committer = group_commit.GroupCommitter(run, max_batch=2)
    first, futures = submit_while_held(committer, run, [1, 2, 3, 4, 5])
    assert sorted(f.result(10) for f in futures) == [10, 20, 30, 40, 50]
    assert [len(batch) for batch in run.batches] == [1, 2, 2, 1]


def test_a_failing_batch_fails_its_callers_only():
    run = Recorder(fail_on=3)
    committer = group_commit.GroupCommitter(run, max_batch=2)
    first, futures = submit_while_held(committer, run, [1, 2, 3, 4])
    outcomes = {}
    for item, future in zip([1, 2, 3, 4], futures, strict=True):
        try:
            outcomes[item] = future.result(10)
        except ValueError as exc:
            outcomes[item] = str(exc)
    failed = next(batch for batch in run.batches if 3 in batch)
    for item in (1, 2, 3, 4):
        expected = 'bad item 3' if item in failed else item * 10
        assert outcomes[item] == expected
    assert committer.submit(7) == 70  # the committer carries on


def test_a_batch_must_give_one_result_per_item():
    committer = group_commit.GroupCommitter(lambda items: [])
    with pytest.raises(RuntimeError, match='batch of 1 gave 0 results'):
        committer.submit(1)


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError):
        group_commit.GroupCommitter(lambda items: items, max_batch=0)


def test_a_failed_result_is_raised_to_its_own_caller_only():
    """A batch whose run fails for some items (a take that lost its race
    after the finishes beside it committed) fails those callers alone."""
    lost = ValueError('lost the race')
    committer = group_commit.GroupCommitter(
        lambda items: [group_commit.Failed(lost) if item == 2 else item * 10
                       for item in items])
    assert committer.submit(1) == 10
    with pytest.raises(ValueError) as raised:
        committer.submit(2)
    assert raised.value is lost
    assert committer.submit(3) == 30
