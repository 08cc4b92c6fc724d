"""How the suite shares two cores: ``make test`` runs it on two pytest-xdist workers
(``--dist loadgroup``). The tests that run several daemons and a broker at once (roles,
rebalances, broker faults) are one group, ``HEAVY``, so they run one after another on one
worker, beside the lighter tests on the other, never beside each other: two of them at once
on two cores would starve both of the CPU their timeouts assume."""

from __future__ import annotations

import pytest

HEAVY = pytest.mark.xdist_group("heavy")
