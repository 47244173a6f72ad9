"""Bar charts drawn on the server as inline SVG: no script, no fonts, no request of their own.

Pure functions: plain numbers and labels in, an SVG string (``markupsafe.Markup``) out. Every
piece of text is escaped, so a label can never inject markup. Charts scale to their container
(``viewBox`` and ``width="100%"``), so they fit a 360 px phone as well as a laptop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

# Colours of the segments of a stacked bar, and of a plain bar (readable in grey-scale too).
PALETTE = ("#1b7a43", "#6fb38a", "#e0a030", "#c0392b", "#7f8c8d", "#2c6fbb")
BAR = "#2c6fbb"
TRACK = "#e6e9ee"
INK = "#1d2433"


def _num(value: float) -> str:
    """Coordinates with at most one decimal: small markup, no float noise."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _default_format(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}".replace(".", ",")
    return f"{int(value):,}".replace(",", ".")


def bar_chart(items: Sequence[tuple[str, float]], *, title: str, width: int = 340,
              max_value: float | None = None, suffix: str = "",
              fmt: Callable[[float], str] = _default_format) -> Markup:
    """Horizontal bars, one per ``(label, value)``, the label above its bar, the value at its end.

    ``max_value`` fixes the scale (100 for percentages); by default the largest value fills the
    width. Negative values are drawn as zero.
    """
    row, bar_h, label_h = 34, 12, 14
    height = max(row * len(items), row) + 6
    top = max([max_value or 0] + [v for _, v in items if v is not None]) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    if not items:
        parts.append(f'<text x="0" y="20" font-size="12" fill="{INK}">Belum ada data</text>')
    value_w = 64
    track_w = width - value_w
    for i, (label, value) in enumerate(items):
        y = i * row + 2
        v = max(value or 0, 0)
        w = track_w * min(v / top, 1)
        text = escape(f"{fmt(value or 0)}{suffix}")
        parts.append(
            f'<text x="0" y="{y + 11}" font-size="12" fill="{INK}">{escape(label)}</text>'
            f'<rect x="0" y="{y + label_h + 2}" width="{_num(track_w)}" height="{bar_h}" '
            f'rx="2" fill="{TRACK}"/>'
            f'<rect x="0" y="{y + label_h + 2}" width="{_num(w)}" height="{bar_h}" rx="2" '
            f'fill="{BAR}"><title>{escape(label)}: {text}</title></rect>'
            f'<text x="{width}" y="{y + label_h + 12}" font-size="12" text-anchor="end" '
            f'fill="{INK}">{text}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_bar(segments: Sequence[tuple[str, float]], total: float, *, title: str,
                width: int = 340, legend: bool = True) -> Markup:
    """One bar split into ``(label, value)`` segments out of ``total``, with a legend below.

    What the segments leave of ``total`` stays as the grey track (not yet done). Segments that
    add up to more than ``total`` are scaled to fit.
    """
    bar_h = 16
    values = [max(v or 0, 0) for _, v in segments]
    scale_total = max(total or 0, sum(values)) or 1
    legend_rows = (len(segments) + 1) // 2 if legend else 0
    height = bar_h + 4 + legend_rows * 18
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<rect x="0" y="0" width="{width}" height="{bar_h}" rx="3" fill="{TRACK}"/>'
    ]
    x = 0.0
    for i, ((label, _), v) in enumerate(zip(segments, values, strict=True)):
        w = width * v / scale_total
        if w > 0:
            parts.append(
                f'<rect x="{_num(x)}" y="0" width="{_num(w)}" height="{bar_h}" '
                f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(label)}: '
                f'{escape(_default_format(v))}</title></rect>'
            )
        x += w
    if legend:
        half = width / 2
        for i, ((label, _), v) in enumerate(zip(segments, values, strict=True)):
            lx, ly = (i % 2) * half, bar_h + 6 + (i // 2) * 18
            parts.append(
                f'<rect x="{_num(lx)}" y="{ly}" width="10" height="10" '
                f'fill="{PALETTE[i % len(PALETTE)]}"/>'
                f'<text x="{_num(lx + 14)}" y="{ly + 9}" font-size="11" fill="{INK}">'
                f'{escape(label)} {escape(_default_format(v))}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
