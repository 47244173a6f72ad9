"""axe-core in the browser tests: no serious or critical accessibility violation on a page.

axe-core comes from the npm registry, pinned in tests/package.json with its lock file, and is
installed by ``npm ci`` in tests/ (``.ci/run`` does it when it is missing). It is a test tool
only: the pages never load it. It runs through the DevTools protocol (``page.evaluate``), which
the pages' Content-Security-Policy does not govern, so the pages are checked as they ship.
"""

from __future__ import annotations

from pathlib import Path

from tests.pages.conftest import skip_or_fail

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def axe_missing() -> str | None:
    if AXE.is_file():
        return None
    return f"{AXE} is missing: run `npm ci` in tests/ (needs Node)"


def require_axe() -> None:
    """Skip without axe-core, or fail when CI=true."""
    skip_or_fail("accessibility checks", axe_missing())


def violations(page) -> list[str]:
    """The serious and critical WCAG 2.x A/AA violations of the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [f"{page.url}: {v['id']} ({v['impact']}): {v['help']} at {v['nodes']}"
            for v in found if v["impact"] in SERIOUS]
