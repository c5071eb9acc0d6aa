"""What one GraphQL request may ask for (contract section 7); over a limit, nothing is executed.

Size is checked before the text is parsed; depth, aliases and (in production) introspection right after,
before the document is validated against the schema, with Strawberry's own rules. A request over a limit
therefore gets exactly that one error, not also every validation error of its text, and costs no
service call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

from graphql import DocumentNode, GraphQLError, GraphQLSchema, validate
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from graphql_api.errors import BAD_USER_INPUT

MAX_QUERY_BYTES = 16 * 1024
MAX_DEPTH = 10
MAX_ALIASES = 30


LIMIT_RULES: tuple[type[ASTValidationRule], ...] = (depth_rule(MAX_DEPTH, None), aliases_rule(MAX_ALIASES))
# Production: introspection is refused like a limit (contract section 7).
LIMIT_RULES_WITHOUT_INTROSPECTION = (*LIMIT_RULES, NoSchemaIntrospectionCustomRule)

LimitCheck = Callable[[GraphQLSchema, DocumentNode], GraphQLError | None]


def limit_check(rules: tuple[type[ASTValidationRule], ...], cache_size: int = 128) -> LimitCheck:
    """The first limit ``document`` breaks, remembered per document: with Strawberry's parser cache the
    same query text is the same document, so a repeated query is not walked again."""

    @functools.lru_cache(maxsize=cache_size)
    def check(schema: GraphQLSchema, document: DocumentNode) -> GraphQLError | None:
        errors = validate(schema, document, rules)
        return errors[0] if errors else None

    return check


class RequestLimits(SchemaExtension):
    def __init__(self, check: LimitCheck) -> None:
        self.check = check

    def on_operation(self) -> Iterator[None]:
        query = self.execution_context.query or ""
        # Characters first: cheap, and a text under the limit in characters can still be over it in bytes.
        if len(query) > MAX_QUERY_BYTES or len(query.encode()) > MAX_QUERY_BYTES:
            raise GraphQLError(
                f"The query is longer than {MAX_QUERY_BYTES} bytes.",
                extensions={"code": BAD_USER_INPUT, "limit": "size"},
            )
        yield

    def on_validate(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        if document is not None:
            error = self.check(self.execution_context.schema._schema, document)
            if error is not None:
                raise GraphQLError(error.message, nodes=error.nodes, extensions={"code": BAD_USER_INPUT})
        yield
