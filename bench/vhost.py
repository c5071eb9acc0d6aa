"""A RabbitMQ vhost a bench run owns (made with rabbitmqctl, deleted at the end)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from shared.testing.fixtures import vhost_url


@contextmanager
def throwaway_vhost(amqp_url: str) -> Iterator[str]:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise RuntimeError("rabbitmqctl is needed to make the bench's own vhost")
    vhost = f"bench_{uuid.uuid4().hex[:10]}"
    user = urlsplit(amqp_url).username or "guest"
    subprocess.run([ctl, "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    subprocess.run(
        [ctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield vhost_url(amqp_url, vhost)
    finally:
        subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60, check=False)
