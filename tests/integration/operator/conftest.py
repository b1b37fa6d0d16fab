"""The operator-process fixtures (tests.support.operator_stack) for this package's tests; a
module with its own fixture of the same name keeps its own."""

from tests.support.operator_stack import (  # noqa: F401  (fixtures, found by name)
    callback_topic,
    operator,
    operator_env,
    provider,
)
