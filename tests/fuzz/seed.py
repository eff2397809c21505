"""The fuzzers' seed: new cases every day, the same cases all day, and any day's on demand.

`HUB_FUZZ_SEED=20261129 pytest tests/fuzz tests/unit/streaming/test_fuzz.py` replays a run; the
seed in use is printed in pytest's header and in every fuzz failure.
"""

from __future__ import annotations

import datetime
import os


def fuzz_seed() -> int:
    """HUB_FUZZ_SEED if set, else today's UTC date as YYYYMMDD."""
    raw = os.environ.get("HUB_FUZZ_SEED", "").strip()
    if raw:
        return int(raw)
    return int(datetime.datetime.now(datetime.UTC).strftime("%Y%m%d"))


SEED = fuzz_seed()
REPLAY = (
    f"fuzz seed {SEED} (replay: HUB_FUZZ_SEED={SEED} pytest tests/fuzz"
    " tests/unit/streaming/test_fuzz.py)"
)
