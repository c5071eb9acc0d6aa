"""What only orders injects; the dependencies every service shares are in ``shared.service.dependencies``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header

from orders.idempotency.service import HEADER
from orders.order.gate import Admission
from orders.resources import Resources
from shared.service.dependencies import CurrentPrincipal, resources_of

ResourcesDep = Annotated[Resources, Depends(resources_of(Resources))]

IdempotencyKeyDep = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=255,
        description="Makes the create safe to retry: the same key and body return the first answer.",
    ),
]


async def transition_slot(
    order_id: uuid.UUID, _: CurrentPrincipal, resources: ResourcesDep
) -> AsyncIterator[Admission]:
    """Held until after the commit; a concurrent transition of the same order is refused (409).
    After authentication, so an anonymous request gets its 401 whatever else is under way."""
    with resources.gate.admit(order_id) as admission:
        yield admission


# Listed before the session in a handler's parameters, so that it is released after the commit.
TransitionSlot = Annotated[Admission, Depends(transition_slot, scope="function")]
