from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from graphql_testing import FakeServices, GraphQLClient, serve


@pytest.fixture
def fake() -> FakeServices:
    return FakeServices()


@pytest.fixture
async def gql(fake: FakeServices) -> AsyncIterator[GraphQLClient]:
    async for client in serve(fake):
        yield client
