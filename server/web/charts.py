"""The dashboard's bar charts: HTML text beside SVG bars that have no viewBox.

``server.charts`` draws whole charts in a ``viewBox`` scaled to the container's width, so
their text grows with the screen (11 px legend text is about 30 px at 1280 px). Here every
word is HTML (labels, values, legend), at the page's own font size at every width, and the
SVG draws only the bars: no ``viewBox``, ``width="100%"`` and a fixed height in CSS, with the
rectangles' ``x`` and ``width`` in percent of the bar's width. Colours are classes in
``tapak.css`` (``.s0``...``.s5`` for segments and their legend swatches, ``.trk``, ``.bf``):
no style attribute anywhere, as the pages' Content-Security-Policy demands.

Pure functions: numbers and labels in, ``markupsafe.Markup`` out; all text is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

SEGMENT_CLASSES = 6  # .s0 ... .s5 in tapak.css
SVG = '<svg xmlns="http://www.w3.org/2000/svg" class="chart {cls}" role="img" aria-label="{label}">'


def _pct(value: float) -> str:
    """A percentage for an SVG length, at most two decimals: ``42.5%``."""
    return f"{value:.2f}".rstrip("0").rstrip(".") + "%"


def default_format(value: float) -> str:
    """``1.234`` (thousands with a dot), ``12,5`` (a decimal comma)."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}".replace(".", ",")
    return f"{int(value):,}".replace(",", ".")


def bar_chart(items: Sequence[tuple[str, float]], *, title: str,
              max_value: float | None = None, suffix: str = "",
              fmt: Callable[[float], str] = default_format) -> Markup:
    """A list of horizontal bars, one per ``(label, value)``: the label and the value as text
    above the bar. ``max_value`` fixes the scale (100 for percentages); by default the largest
    value fills the width. Negative values are drawn as zero."""
    if not items:
        return Markup('<p class="muted">Belum ada data</p>')
    top = max([max_value or 0] + [v for _, v in items if v is not None]) or 1
    parts = [f'<ul class="bars" aria-label="{escape(title)}">']
    for label, value in items:
        v = max(value or 0, 0)
        text = escape(f"{fmt(value or 0)}{suffix}")
        parts.append(
            f'<li><span class="bl">{escape(label)}</span> <span class="bv">{text}</span>'
            + SVG.format(cls="hbar", label=escape(f"{label}: {fmt(value or 0)}{suffix}"))
            + '<rect width="100%" height="100%" rx="2" class="trk"/>'
            f'<rect width="{_pct(100 * min(v / top, 1))}" height="100%" rx="2" class="bf"/>'
            "</svg></li>")
    parts.append("</ul>")
    return Markup("".join(parts))


def stacked_bar(segments: Sequence[tuple[str, float]], total: float, *, title: str,
                legend: bool = True) -> Markup:
    """One bar split into ``(label, value)`` segments out of ``total``, with an HTML legend
    below (a colour swatch, the label and the value). What the segments leave of ``total``
    stays as the grey track (not yet done); segments adding up to more are scaled to fit."""
    values = [max(v or 0, 0) for _, v in segments]
    scale = max(total or 0, sum(values)) or 1
    parts = [SVG.format(cls="sbar", label=escape(title)),
             f"<title>{escape(title)}</title>",
             '<rect width="100%" height="100%" rx="3" class="trk"/>']
    x = 0.0
    for i, ((label, _), v) in enumerate(zip(segments, values, strict=True)):
        w = 100 * v / scale
        if w > 0:
            parts.append(f'<rect x="{_pct(x)}" width="{_pct(w)}" height="100%" '
                         f'class="s{i % SEGMENT_CLASSES}"><title>{escape(label)}: '
                         f'{escape(default_format(v))}</title></rect>')
        x += w
    parts.append("</svg>")
    if legend:
        parts.append('<ul class="legend">')
        for i, ((label, _), v) in enumerate(zip(segments, values, strict=True)):
            parts.append(f'<li><span class="sw s{i % SEGMENT_CLASSES}"></span>'
                         f"{escape(label)} {escape(default_format(v))}</li>")
        parts.append("</ul>")
    return Markup("".join(parts))
