"""The import job's states and counts."""

from __future__ import annotations

import pytest

from engine.errors import TransitionError
from engine.forms.transfer import ImportJobState, ImportProgress


def test_valid_rows_ends_done_with_failures_counted() -> None:
    state = ImportJobState().start().advance(ImportProgress(10, 8, 2))
    final = state.finish(ImportProgress(10, 8, 2), mode="valid_rows")
    assert (final.status, final.progress) == ("done", ImportProgress(10, 8, 2))


def test_all_or_nothing_with_a_bad_row_fails_and_writes_nothing() -> None:
    final = ImportJobState().start().finish(ImportProgress(10, 9, 1), mode="all_or_nothing")
    assert (final.status, final.progress.rows_written) == ("failed", 0)


def test_final_states_are_final() -> None:
    done = ImportJobState().start().finish(ImportProgress(), mode="valid_rows")
    assert done.is_final
    with pytest.raises(TransitionError) as err:
        done.start()
    assert err.value.code == "transfer.bad-job-transition"
