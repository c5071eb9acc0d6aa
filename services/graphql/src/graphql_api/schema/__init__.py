"""The GraphQL schema of contract section 7."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from graphql_api.limits import (
    LIMIT_RULES,
    LIMIT_RULES_WITHOUT_INTROSPECTION,
    RequestLimits,
    limit_check,
)
from graphql_api.outcome import ErrorCodes
from graphql_api.schema.mutation import Mutation
from graphql_api.schema.query import Query
from graphql_api.schema.scalars import LONG, Long
from graphql_api.schema.subscription import Subscription

QUERY_CACHE_SIZE = 128


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry logs every error with a traceback; outcome.ErrorCodes logs the unexpected ones,
        # and a NOT_FOUND or a refused query is the client's business, not an operator's.
        return None


def build_schema(*, introspection: bool = True) -> strawberry.Schema:
    # ErrorCodes first: extensions run their after-parts in reverse, so it sees every other's errors.
    check = limit_check(LIMIT_RULES if introspection else LIMIT_RULES_WITHOUT_INTROSPECTION)
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        ErrorCodes,
        partial(RequestLimits, check),
        # The same query validated once: clients send the same few queries. (Strawberry's ParserCache
        # would save the parse too, but a syntax error then escapes ErrorCodes and loses its code.)
        partial(ValidationCache, maxsize=QUERY_CACHE_SIZE),
    ]
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(scalar_map={Long: LONG}),
    )


def sdl() -> str:
    """The schema as published in docs/schema.graphql."""
    return build_schema().as_str() + "\n"
