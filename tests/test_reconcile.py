"""The inbox reconciler's decision, as a table: which attempt to start, given the runs so far."""

import pytest
from prefect.client.schemas.objects import StateType as S

from flows.inbox import MAX_ATTEMPTS, next_attempt, run_key

N = None


@pytest.mark.parametrize("states, start", [
    ([N, N, N], 0),                         # never started: the first attempt
    ([S.RUNNING, N, N], None),              # running: leave it
    ([S.SCHEDULED, N, N], None),            # queued: leave it
    ([S.COMPLETED, N, N], None),            # finished (an analysis, or a recorded failure): done
    ([S.CRASHED, N, N], 1),                 # its worker died: again, under the next key
    ([S.FAILED, N, N], 1),
    ([S.CRASHED, S.RUNNING, N], None),      # the retry is running
    ([S.CRASHED, S.COMPLETED, N], None),
    ([S.CRASHED, S.CRASHED, N], 2),
    ([S.CRASHED, S.FAILED, S.CRASHED], None),   # all attempts used: given up
    ([S.CANCELLED, N, N], None),            # a person cancelled it: not ours to restart
])
def test_the_attempt_to_start(states, start):
    assert len(states) == MAX_ATTEMPTS
    assert next_attempt(states) == start


def test_run_keys_differ_by_content_configuration_and_attempt():
    keys = {run_key(sha, key, attempt) for sha in ("a", "b") for key in ("k1", "k2") for attempt in range(3)}
    assert len(keys) == 12 and run_key("a", "k1", 0) == run_key("a", "k1", 0)
