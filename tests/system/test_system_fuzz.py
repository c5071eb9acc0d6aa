"""A schema-driven fuzzer over every operation: through the gateway with a valid token, and each
service directly. Whatever it sends, no answer is a 5xx, and every answer matches the document:
documented status codes, response schemas and headers, problem documents for rejections.

Bounded (``EXAMPLES`` per operation) so the whole module stays within about three minutes here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.failures import FailureGroup

from shared.devstack import Stack

from .conftest import ADMIN_PASSWORD
from .opsstack import running_stack

# An admin of the fuzzer's own: calling as that admin it sends wrong current passwords, which count as
# failed logins of the account and lock it out; the admin the other modules share must stay usable.
ADMIN_EMAIL = "fuzz-admin@example.com"

# Five processes start on a machine other suites share, then every operation is fuzzed twice.
pytestmark = [pytest.mark.system, pytest.mark.timeout(900)]

EXAMPLES = 15
SERVICES = ("users", "orders", "notification", "realtime")
# An event stream never ends: a fuzzer waiting for its body would wait forever. Its handshake and its
# hostile offsets are covered by the realtime tests.
ENDLESS = {"/api/v1/events/stream"}
# Schema-valid requests the server rightly refuses, for reasons JSON Schema cannot state: a random
# current password is wrong (422); 186.0 is an integer to JSON Schema but not a quantity to the
# contract; e-mail addresses at reserved names (.test, .invalid) pass "format: email" but cannot
# receive mail; a random token is not one the server issued (400); random bytes are not an image
# (415/422). Every other check still runs on these operations.
NOT_SAYABLE_IN_SCHEMA = {
    "/api/v1/users/me/password",
    "/api/v1/orders",
    "/api/v1/auth/register",
    "/api/v1/auth/password-reset",
    "/api/v1/auth/password-reset/confirm",
    "/api/v1/auth/verify-email",
    "/api/v1/users/me/avatar",
}


@pytest.fixture(scope="module")
def fuzz_stack(
    test_database_url: str,
    test_amqp_url: str,
    signing_key_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    # running_stack raises the rate limits: every generated request comes from one address, and the
    # limits are not what is fuzzed here.
    with running_stack(
        test_database_url,
        test_amqp_url,
        signing_key_file,
        tmp_path_factory.mktemp("fuzz-logs"),
        env={
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "USERS_ARGON2_PROFILE": "CHEAPEST",
        },
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def auth(fuzz_stack: Stack) -> dict[str, str]:
    """An admin's token: it reaches every operation, the admin-only ones included."""
    form = {"grant_type": "password", "username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    response = httpx.post(fuzz_stack.url("gateway") + "/api/v1/auth/token", data=form, timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def load(url: str) -> Any:
    document = httpx.get(url + "/openapi.json", timeout=30).json()
    document["paths"] = {path: item for path, item in document["paths"].items() if path not in ENDLESS}
    document["servers"] = [{"url": url}]
    return schemathesis.openapi.from_dict(document)


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
    # No shrinking: the first failing example is reported as generated, which keeps the run bounded.
    phases=[Phase.explicit, Phase.generate],
)


def fuzz(operation: Any, mode: GenerationMode, base_url: str, auth: dict[str, str]) -> str | None:
    """Run one operation's examples; the first failure as text, or None."""

    excluded = [positive_data_acceptance] if operation.path in NOT_SAYABLE_IN_SCHEMA else []

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        if mode is GenerationMode.POSITIVE and isinstance(case.query, dict):
            # A cursor is opaque: only one the server made is valid, and no schema can generate it.
            # Crafted ones are the negative mode's (and the pagination tests').
            case.query.pop("cursor", None)
        case.call_and_validate(base_url=base_url, headers=auth, timeout=30, excluded_checks=excluded)

    try:
        run()
    except Unsatisfiable:
        return None  # nothing in the operation can be made invalid (no parameters, no body)
    except (Exception, FailureGroup) as exc:  # the report names the operation, the request and what failed
        return f"{operation.label} ({mode.value}): {exc}"
    return None


@pytest.mark.parametrize("target", ["gateway", *SERVICES])
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
    fuzz_stack: Stack, auth: dict[str, str], target: str
) -> None:
    base_url = fuzz_stack.url(target)
    schema = load(base_url)
    operations = [result.ok() for result in schema.get_all_operations()]
    failures = [
        failure
        for operation in operations
        for mode in GenerationMode
        if (failure := fuzz(operation, mode, base_url, auth)) is not None
    ]
    assert not failures, (
        f"{len(failures)} of {2 * len(operations)} fuzzed operations failed:\n\n" + "\n\n".join(failures)
    )
