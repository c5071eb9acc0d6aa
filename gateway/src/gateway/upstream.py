"""How an upstream failure (``shared.http.errors``) becomes the client's problem document."""

from __future__ import annotations

import logging

from shared.errors import AppError, BadGateway, GatewayTimeout, UpstreamUnavailable
from shared.http import UpstreamError

log = logging.getLogger(__name__)


def translate(exc: UpstreamError, upstream: str) -> AppError:
    """Nothing has reached the client yet: unavailable is 503 (retry later), slow is 504, broken 502."""
    log.warning("upstream call failed", extra={"upstream": upstream, "kind": exc.kind, "error": str(exc)})
    if exc.kind == "unavailable":
        return UpstreamUnavailable(f"The {upstream} service cannot be reached.", retry_after=5)
    if exc.kind == "timeout":
        return GatewayTimeout(f"The {upstream} service did not answer in time.")
    return BadGateway(f"The {upstream} service gave no valid answer.")
