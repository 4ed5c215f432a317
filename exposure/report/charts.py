"""The report's charts: pygal SVG, inlined into the HTML.

Rendered with no JavaScript (pygal always adds a config ``<script>`` even with ``js=[]``, so an
XML filter removes it, and its comments naming pygal's web site), so a chart is a static
picture in a browser, an offline file or a mail client. Every chart sits next to a table of the
same numbers, for mail clients that drop SVG.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from xml.etree import ElementTree

import pygal
from pygal.style import Style

from exposure.report.figures import TrendPoint
from exposure.report.i18n import Locale

FONT = (
    "'Hiragino Sans','Hiragino Kaku Gothic ProN','Noto Sans CJK JP','Noto Sans JP','Yu Gothic',"
    "Meiryo,'Segoe UI','Helvetica Neue',Arial,sans-serif"
)
MARGIN = 12
NAVY, TEAL, RED, AMBER, GREY = "#1f3a5f", "#2a9d8f", "#b42318", "#b7791f", "#8a94a6"
# Colours carry meaning: red for what needs a forced reset or is live, amber for notify.
CATEGORY_COLOURS = {
    "force_reset": RED,
    "notify": AMBER,
    "none": GREY,
    "live": RED,
    "tweaked": "#d9534f",
    "unknown": AMBER,
    "absent": "#c0841a",
    "stale": GREY,
}

STYLE = Style(
    background="transparent",
    plot_background="#ffffff",
    foreground="#243447",
    foreground_strong="#0f1c2e",
    foreground_subtle="#d5dbe3",
    guide_stroke_color="#e3e8ef",
    guide_stroke_dasharray="none",
    major_guide_stroke_color="#c9d1dc",
    major_guide_stroke_dasharray="none",
    opacity="1",
    opacity_hover="1",
    transition="none",
    colors=(NAVY, TEAL, AMBER, RED, GREY, "#6b5b95"),
    font_family=FONT,
    label_font_family=FONT,
    major_label_font_family=FONT,
    value_font_family=FONT,
    value_label_font_family=FONT,
    title_font_family=FONT,
    legend_font_family=FONT,
    title_font_size=15,
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=12,
    value_font_size=12,
    value_label_font_size=12,
)


def _static(tree: Any) -> Any:
    """Drop ``<script>`` elements and comments: the chart must work with no JavaScript."""
    for parent in list(tree.iter()):
        for child in list(parent):
            tag = child.tag if isinstance(child.tag, str) else ""
            if child.tag is ElementTree.Comment or tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return tree


def _config(locale: Locale, title: str, **extra: Any) -> dict[str, Any]:
    formatter: Callable[[float], str] = locale.number
    return {
        "title": title,
        "style": STYLE,
        "disable_xml_declaration": True,
        "js": [],
        "value_formatter": formatter,
        "no_data_text": locale.t("text.none_this_week"),
        "tooltip_fancy_mode": False,
        "margin": MARGIN,
        **extra,
    }


def _render(chart: Any, title: str) -> str:
    chart.add_xml_filter(_static)
    svg: str = chart.render(is_unicode=True)
    # An accessible name, for screen readers and for mail clients that show alt text.
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_attr(title)}" ', 1)


def _attr(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


def label_overflow(labels: Sequence[str], font_size: float) -> float:
    """How much wider than pygal's estimate the widest label is, in pixels.

    pygal reserves 0.6 em per character, which fits Latin text; a full-width (CJK) character
    takes a whole em, so without the difference the left of 強制リセット is cut off.
    """
    return max(
        (
            sum(0.4 for ch in text if unicodedata.east_asian_width(ch) in ("W", "F")) * font_size
            for text in labels
        ),
        default=0.0,
    )


def integer_ticks(largest: float, most: int = 6) -> list[int]:
    """Whole-number axis labels from 0 past ``largest`` in steps of 1, 2 or 5 x 10^n (counts
    have no fractions: pygal's own ticks would print 0 0 1 1 2 2 with whole-number labels)."""
    step = 1
    while largest / step > most - 1:
        for factor in (2, 2.5, 2):
            step = int(step * factor)
            if largest / step <= most - 1:
                break
    top = max(step, math.ceil(largest / step) * step)
    return list(range(0, top + 1, step))


def category_chart(locale: Locale, title: str, counts: Mapping[str, int], label_prefix: str) -> str:
    """A horizontal bar per category (e.g. per action), values printed on the bars."""
    # pygal draws horizontal bars bottom-up; reversed, the first category is on top, as in
    # the table beside the chart.
    keys = list(counts)[::-1]
    labels = [locale.label(label_prefix, key) for key in keys]
    chart = pygal.HorizontalBar(
        **_config(
            locale,
            title,
            width=480,
            height=64 + 30 * max(len(keys), 1),
            show_legend=False,
            print_values=True,
            print_values_position="top",
            print_zeroes=True,
            show_y_guides=False,
            spacing=8,
            y_labels=integer_ticks(max(counts.values(), default=0)),
            margin_left=MARGIN + label_overflow(labels, STYLE.label_font_size),
            truncate_label=-1,
        )
    )
    chart.x_labels = labels
    chart.add(
        title,
        [{"value": counts[key], "color": CATEGORY_COLOURS.get(key, NAVY)} for key in keys],
    )
    return _render(chart, title)


def trend_chart(locale: Locale, points: Sequence[TrendPoint]) -> str:
    """New exposures and confirmed forced resets per week, the report's week last."""
    title = locale.t("chart.trend")
    chart = pygal.Bar(
        **_config(
            locale,
            title,
            width=1000,
            height=340,
            legend_at_bottom=True,
            legend_at_bottom_columns=2,
            print_values=True,
            print_values_position="top",
            print_zeroes=False,
            x_label_rotation=0,
            y_labels=integer_ticks(
                max((max(p.new_exposures, p.confirmed_resets) for p in points), default=0)
            ),
            truncate_legend=-1,
        )
    )
    chart.x_labels = [locale.short_date(p.week.monday) for p in points]
    chart.add(locale.t("col.new_exposures"), [p.new_exposures for p in points])
    chart.add(locale.t("col.confirmed_resets"), [p.confirmed_resets for p in points])
    return _render(chart, title)
