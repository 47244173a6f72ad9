"""The push tests' phone (a published form, assigned families, real JPEGs) for the metrics."""

from tests.push.conftest import field  # noqa: F401  (a fixture)
