"""Every error the client sees carries ``extensions.code`` from the contract's list, and nothing else leaks.

- ``ApiError`` raised by a resolver: its code and extensions as they are;
- an error before execution (syntax, validation, a limit, a bad variable): ``BAD_USER_INPUT``;
- anything else a resolver raised is a bug: logged with its traceback, shown as ``INTERNAL`` without
  its message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult, StreamExecutionResult

from graphql_api.errors import BAD_USER_INPUT, INTERNAL, ApiError

log = logging.getLogger(__name__)


def classify(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, ApiError):
        return GraphQLError(
            original.message,
            nodes=error.nodes,
            path=error.path,
            extensions=original.extensions,
        )
    if original is None or isinstance(original, GraphQLError):
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", BAD_USER_INPUT if error.path is None else INTERNAL)
        return GraphQLError(error.message, nodes=error.nodes, path=error.path, extensions=extensions)
    log.error(
        "resolver failed",
        exc_info=(type(original), original, original.__traceback__),
        extra={"path": error.path},
    )
    return GraphQLError(
        "An unexpected error occurred.", nodes=error.nodes, path=error.path, extensions={"code": INTERNAL}
    )


def classify_all(errors: list[GraphQLError]) -> list[GraphQLError]:
    out: list[GraphQLError] = []
    seen: set[str] = set()
    for error in errors:
        classified = classify(error)
        if classified.path is None:
            # A request refused before execution gets one error per reason, however often it occurs
            # (the depth rule reports every branch that is too deep).
            if classified.message in seen:
                continue
            seen.add(classified.message)
        out.append(classified)
    return out


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if isinstance(result, (GraphQLExecutionResult, ExecutionResult)) and result.errors:
            result.errors = classify_all(list(result.errors))

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        # A subscription's results (its refusal before it runs too) are sent from inside the operation,
        # long before on_operation's after-part: each is classified on its way out.
        if isinstance(result, ExecutionResult) and result.errors:
            result.errors = classify_all(list(result.errors))
        yield
