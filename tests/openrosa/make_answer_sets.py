"""Generate tests/openrosa/data/answer_sets.json once: answer sets for the parity test.

    .venv/bin/python -m tests.openrosa.make_answer_sets

The sets come from hypothesis strategies built from the definition (every question may be blank,
dates cluster around the ages the rules test: 10 and 54 on the visit date, the day before and
after), limited to answers an XForm can hold: no empty strings (a blank is absent), geopoints
with altitude and accuracy, finite numbers. The file is committed: the test never regenerates it.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import forms

OUT = Path(__file__).parent / "data" / "answer_sets.json"
VISIT_DATES = ["2026-01-05", "2028-02-29", "2026-12-31", "2027-03-01"]
COUNT = 120


def _years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February
        return d.replace(year=d.year - years, day=28)


def dates(visit: str):
    v = date.fromisoformat(visit)
    near = st.builds(
        lambda y, off: (_years_before(v, y) + timedelta(days=off)).isoformat(),
        st.sampled_from([0, 9, 10, 11, 30, 53, 54, 55, 126]),
        st.sampled_from([-1, 0, 1]),
    )
    anywhere = st.dates(date(1900, 1, 1), date(2030, 12, 31)).map(date.isoformat)
    return st.one_of(near, anywhere)


def value(f: dict, choices: dict, visit: str):
    t = f["type"]
    if t == "select_one":
        return st.sampled_from([o["value"] for o in choices[f["choices"]]])
    if t == "select_multiple":
        codes = [o["value"] for o in choices[f["choices"]]]
        return st.lists(st.sampled_from(codes), unique=True, min_size=1)
    if t == "boolean":
        return st.booleans()
    if t == "integer":
        return st.integers(-5, 200)
    if t == "decimal":
        return st.sampled_from([0, 0.5, 1, 36, 36.5, 10000, 10000.5])
    if t == "text":
        options = [f["example"]] if "example" in f else []
        return st.sampled_from(options + ["Ab", "Jl. Mawar 3"])
    if t == "date":
        return dates(visit)
    if t == "datetime":
        return st.just(f"{visit}T09:12:00+07:00")
    if t == "geopoint":
        return st.builds(
            lambda lat, lon, alt, acc: {
                "lat": lat,
                "lon": lon,
                "altitude_m": alt,
                "accuracy_m": acc,
            },
            st.sampled_from([-6.2, -6.1402]),
            st.sampled_from([106.8, 106.7361]),
            st.sampled_from([0, 12.5]),
            st.sampled_from([0, 5, 99.5, 100, 100.5, 150]),
        )
    if t == "photo":
        return st.just(f"{f['name']}.jpg")
    raise AssertionError(t)


def container(fields: list, choices: dict, visit: str, depth: int = 0):
    parts = {}
    for f in fields:
        t = f["type"]
        if t == "note":
            continue
        if t == "group":
            inner = container(f["fields"], choices, visit, depth + 1)
        elif t == "repeat":
            inner = st.lists(container(f["fields"], choices, visit, depth + 1), max_size=4)
        else:
            inner = value(f, choices, visit)
        # a blank answer is absent, as an XForm holds it
        parts[f["name"]] = st.one_of(st.none(), inner, inner, inner)
    return st.fixed_dictionaries(parts).map(
        lambda d: {k: v for k, v in d.items() if v is not None and v != {} and v != []}
    )


def answer_sets(definition: dict) -> list[dict]:
    choices = definition.get("choices") or {}
    found: list[dict] = []

    @seed(16)
    @settings(
        max_examples=COUNT, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(
        st.sampled_from(VISIT_DATES).flatmap(
            lambda visit: st.tuples(st.just(visit), container(definition["fields"], choices, visit))
        )
    )
    def collect(pair):
        visit, answers = pair
        found.append({"visit_date": visit, "answers": answers})

    collect()
    return found[:COUNT]


def main() -> None:
    definition = forms.get_form("verifikasi_keluarga", 1).definition
    sets = answer_sets(definition)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(sets, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(sets)} answer sets written to {OUT}")


if __name__ == "__main__":
    main()
