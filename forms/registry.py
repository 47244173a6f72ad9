"""The form definitions shipped in this repository: ``forms/<form_id>/v<version>.json``.

One file a version, so that v2 sits beside v1 and visits filled with v1 keep being
checked against v1.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from forms.engine import Form, load_form

FORMS_DIR = Path(__file__).resolve().parent
_FILE_RE = re.compile(r"v([1-9][0-9]*)\.json\Z")


class FormFile(NamedTuple):
    form_id: str
    version: int
    path: Path


def available_forms(root: Path | None = None) -> list[FormFile]:
    """Every shipped definition file, sorted by form_id then version."""
    base = root or FORMS_DIR
    found = []
    for path in base.glob("*/v*.json"):
        m = _FILE_RE.match(path.name)
        if m and not path.parent.name.startswith(("_", ".")):
            found.append(FormFile(path.parent.name, int(m.group(1)), path))
    return sorted(found, key=lambda f: (f.form_id, f.version))


def form_path(form_id: str, version: int) -> Path:
    for f in available_forms():
        if f.form_id == form_id and f.version == version:
            return f.path
    raise LookupError(f"No shipped definition of form {form_id!r} version {version}.")


def latest_version(form_id: str) -> int:
    versions = [f.version for f in available_forms() if f.form_id == form_id]
    if not versions:
        raise LookupError(f"No shipped definition of form {form_id!r}.")
    return max(versions)


def get_form(form_id: str, version: int | None = None) -> Form:
    """The compiled shipped form (newest version when ``version`` is None), loaded once."""
    return _load(form_id, latest_version(form_id) if version is None else version)


@lru_cache(maxsize=32)
def _load(form_id: str, version: int) -> Form:
    path = form_path(form_id, version)
    form = load_form(path)
    if form.form_id != form_id or form.version != version:
        raise LookupError(
            f"{path} declares {form.form_id} v{form.version}; "
            f"its folder and file name say {form_id} v{version}."
        )
    return form
