"""How hard the fuzz tests try: a bounded budget in ``make test``, a long one in ``make fuzz``.

``FUZZ_EXAMPLES`` (environment) sets the examples per property; ``make fuzz`` sets it high.
Invariants everywhere: nothing but the core's own documented error escapes, state stays bounded,
and calls end in a final state.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    derandomize=EXAMPLES <= 500,  # the suite's budget is reproducible; make fuzz explores
    database=None,
)
