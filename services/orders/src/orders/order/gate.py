"""One transition per order at a time in this process: a second one that arrives while the first
is still running is refused at once (409) rather than applied after it.

Pay and cancel are both legal from pending, and cancel is also legal after pay; run one after the
other, both would succeed. The contract says concurrent transitions never both succeed, so a
transition is judged against the status the order had when it arrived, not when it got its turn.
Across replicas the version check on every UPDATE (see ``Order``) refuses the later one of two
transitions that read the same version; this gate widens that window, within one process, to the
whole time a transition is in flight.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from orders.order.models import ConcurrentChange


class TransitionGate:
    def __init__(self) -> None:
        self._in_flight: set[uuid.UUID] = set()

    @contextmanager
    def admit(self, order_id: uuid.UUID) -> Iterator[None]:
        """Hold the order's slot for the block (commit included); ``ConcurrentChange`` if it is taken."""
        if order_id in self._in_flight:
            raise ConcurrentChange
        self._in_flight.add(order_id)
        try:
            yield
        finally:
            self._in_flight.discard(order_id)
