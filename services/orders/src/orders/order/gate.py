"""One transition per order at a time in this process: a second one that arrives while the first
is still running is refused at once (409) rather than applied after it.

Pay and cancel are both legal from pending, and cancel is also legal after pay; run one after the
other, both would succeed. The contract says concurrent transitions never both succeed, so a
transition is judged against the status the order had when it arrived, not when it got its turn.
Across replicas the version check on every UPDATE (see ``Order``) refuses the later one of two
transitions that read the same version; this gate widens that window, within one process, to the
whole time a transition is in flight.

A refusal is only said once the caller has been shown to own the order (``Admission.check`` after
the ownership check): someone else's order is 404, whatever transition of it is under way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from orders.order.models import ConcurrentChange


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether this transition got the order's slot; ``check`` raises ``ConcurrentChange`` if not."""

    granted: bool

    def check(self) -> None:
        if not self.granted:
            raise ConcurrentChange


class TransitionGate:
    def __init__(self) -> None:
        self._in_flight: set[uuid.UUID] = set()

    @contextmanager
    def admit(self, order_id: uuid.UUID) -> Iterator[Admission]:
        """Hold the order's slot for the block (commit included), when it is free."""
        if order_id in self._in_flight:
            yield Admission(granted=False)
            return
        self._in_flight.add(order_id)
        try:
            yield Admission(granted=True)
        finally:
            self._in_flight.discard(order_id)
