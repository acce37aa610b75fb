"""Random JSON in every field: validation answers with SubmissionError or a clean record, never
another exception, and what it accepts validates again to the same record."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from engine.errors import SubmissionError
from engine.forms import FormSpec, compile_form
from engine.forms.validation import EvalContext, validate_submission
from engine.forms.values import record_to_json
from tests.engine.forms.test_record_schema import ALL_TYPES, RECORD

CONTEXT = EvalContext(now=dt.datetime(2026, 11, 23, tzinfo=dt.UTC), actor=1)
SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**70,
    1.5,
    float("nan"),
    float("inf"),
    "",
    " ",
    "x" * 300,
    "2026-11-22",
    "2026-11-22T08:00:00Z",
    "09:30",
    "red",
    "a",
    "1,2",
    "是",
    "\x00",
    "'; DROP TABLE x; --",
    "<script>",
    Decimal("1e400"),
    "1e99999",
]


def _garbage(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 2 and roll < 0.15:
        return [_garbage(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 2 and roll < 0.3:
        keys = ["start", "end", "lng", "lat", "id", "name", "size", "n", "province", "zz"]
        return {rng.choice(keys): _garbage(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return rng.choice(SCALARS)


def test_random_input_never_crashes() -> None:
    form = compile_form(FormSpec.model_validate(ALL_TYPES))
    rng = random.Random(20261123)
    keys = list(RECORD) + ["label", "total", "code", "bogus"]
    accepted = 0
    for _ in range(800):
        data = dict(RECORD)
        for key in rng.sample(keys, rng.randint(1, 4)):
            data[key] = _garbage(rng)
        try:
            record = validate_submission(form, data, current=None, context=CONTEXT)
        except SubmissionError as err:
            assert err.errors and all(e.code and e.loc for e in err.errors)
            continue
        accepted += 1
        again = record_to_json(form.fields, record)
        assert validate_submission(form, again, current=record, context=CONTEXT) == record
    assert accepted > 0
