"""The form engine: definitions, the JsonLogic evaluator, visit validation, prefill.

Pure Python, no Flask: the server, the CLI and the benchmark all use it directly.
"""

from forms.definition import canonical_json, check_definition, content_hash
from forms.engine import (
    Form,
    FormDefinitionError,
    ValidationResult,
    age_in_years,
    load_form,
    validate_visit,
)
from forms.prefill import example_visit, photo_placeholder, prefill
from forms.registry import available_forms, get_form, latest_version

__all__ = [
    "Form",
    "FormDefinitionError",
    "ValidationResult",
    "age_in_years",
    "available_forms",
    "canonical_json",
    "check_definition",
    "content_hash",
    "example_visit",
    "get_form",
    "latest_version",
    "load_form",
    "photo_placeholder",
    "prefill",
    "validate_visit",
]
