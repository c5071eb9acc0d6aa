"""Outside programs some tests drive (promtool, chromium, rabbitmqctl): found, or the test fails saying
what to install. Never a skip: a skipped check reads as a passed one in a green run."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

# What provides each tool, as the failure message should say it.
APT_TEST = "`make apt-test` installs it (as root, through apt-get)"
INSTALL_HINTS = {
    "promtool": f"Debian's prometheus package provides it: {APT_TEST}",
    "prometheus": f"Debian's prometheus package provides it: {APT_TEST}",
    "chromium": f"Debian's chromium package provides it: {APT_TEST}",
    "rabbitmqctl": "it comes with the RabbitMQ server the tests use (run them on the broker's host)",
}


def require_tool(name: str, *, hint: str | None = None) -> str:
    """The path of ``name`` from this virtualenv, PATH or /usr/bin; the test fails if it is nowhere."""
    in_venv = Path(sys.executable).parent / name
    found = str(in_venv) if in_venv.is_file() else shutil.which(name)
    # Root's PATH has the sbin directories; a developer's often does not.
    for candidate in (Path("/usr/bin") / name, Path("/usr/sbin") / name):
        if found is None and candidate.is_file():
            found = str(candidate)
    if found is None:
        why = hint or INSTALL_HINTS.get(name, "`make install` puts the dev tools in .venv")
        pytest.fail(f"{name} is not installed and this test needs it: {why}", pytrace=False)
    return found
