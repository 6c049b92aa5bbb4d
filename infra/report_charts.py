"""The monthly report's four charts as inline SVG, drawn by pygal from the report JSON.

Server-side SVG with pygal's JavaScript turned off (`js=[]`), its banner comments and config
script removed and its random ids replaced, so the same report gives the same markup and the
page fetches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import pygal
from pygal.style import Style

FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"
NAVY, TEAL, SKY, SLATE = "#1e3a5f", "#0f766e", "#3b82f6", "#94a3b8"
GREEN, AMBER, RED = "#15803d", "#b45309", "#b91c1c"
# Bar fills light enough for dark value labels printed on them.
GOOD_FILL, WARN_FILL, BAD_FILL, NONE_FILL = "#7cc49a", "#f2be6b", "#ee8b8b", "#cbd5e1"
METRICS = ("response", "workaround", "resolution", "postmortem")
PRIORITIES = ("P1", "P2", "P3", "P4")
_UUID_ID = re.compile(r"chart-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)  # pygal's inline config, unused without JS

_STYLE_OPTIONS: dict[str, Any] = dict(
    background="white",
    plot_background="white",
    foreground=INK,
    foreground_strong=INK,
    foreground_subtle=GRID,
    opacity="1",
    opacity_hover="0.85",
    transition="none",
    colors=(NAVY, SKY, TEAL, AMBER, SLATE),
    font_family=FONT,
    label_font_family=FONT,
    major_label_font_family=FONT,
    value_font_family=FONT,
    value_label_font_family=FONT,
    legend_font_family=FONT,
    title_font_family=FONT,
    tooltip_font_family=FONT,
    no_data_font_family=FONT,
    label_font_size=13,
    major_label_font_size=13,
    value_font_size=13,
    legend_font_size=13,
    no_data_font_size=16,
    guide_stroke_color=GRID,
    major_guide_stroke_color=GRID,
)


def _style(colors: Sequence[str] = (NAVY, SKY, TEAL, AMBER, SLATE)) -> Style:
    return Style(**{**_STYLE_OPTIONS, "colors": tuple(colors)})


def _chart_options(**overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "style": _style(),
        "js": [],  # no external tooltip script: the file must work offline
        "disable_xml_declaration": True,
        "width": 480,
        "height": 270,
        "margin": 12,
        "spacing": 10,
        "legend_at_bottom": True,
        "legend_box_size": 12,
        "show_y_guides": True,
        "show_x_guides": False,
        "print_zeroes": True,
        "no_data_text": "No data",
    }
    options.update(overrides)
    return options


def _svg(chart: Any, chart_id: str) -> str:
    """Inline SVG with a deterministic id, without pygal's banner comments and config script."""
    text = str(chart.render(is_unicode=True))
    text = _SCRIPT.sub("", _COMMENT.sub("", text))
    text = _UUID_ID.sub(f"chart-{chart_id}", text)
    return text.replace("<svg ", f'<svg role="img" aria-labelledby="{chart_id}-caption" ', 1)


def _attainment_colour(value: float | None) -> str:
    if value is None:
        return NONE_FILL
    if value >= 0.95:
        return GOOD_FILL
    if value >= 0.8:
        return WARN_FILL
    return BAD_FILL


def attainment_chart(report: dict[str, Any], chart_id: str) -> str:
    chart = pygal.HorizontalBar(
        **_chart_options(
            range=(0, 100),
            y_labels=[0, 20, 40, 60, 80, 100],
            show_legend=False,
            print_values=True,
            print_values_position="top",
            value_formatter=lambda v: f"{v:.0f}%",
            formatter=lambda v: f"{v:.1f}%",
            no_data_text="No clock met or breached",
        )
    )
    # pygal draws horizontal bars bottom-up: reverse so that Response comes first.
    chart.x_labels = [m.capitalize() for m in reversed(METRICS)]
    values = []
    for metric in reversed(METRICS):
        figures = report["metrics"][metric]
        attainment = figures["attainment"]
        values.append(
            None
            if attainment is None
            else {
                "value": 100 * attainment,
                "color": _attainment_colour(attainment),
                "label": f"{figures['met']} met, {figures['breached']} breached",
            }
        )
    chart.add("Attainment", values)
    return _svg(chart, chart_id)


def downtime_chart(report: dict[str, Any], chart_id: str) -> str:
    avail = report["availability"]
    over = avail["downtime_s"] > avail["allowance_s"]
    chart = pygal.Bar(
        **_chart_options(
            value_formatter=lambda v: f"{v:,.0f} min" if v >= 10 or v == 0 else f"{v:,.1f} min",
            include_x_axis=True,
            zero=0,
            print_values=False,
            truncate_legend=-1,
            legend_at_bottom_columns=1,
            style=_style((NAVY, BAD_FILL if over else GOOD_FILL)),
        )
    )
    chart.x_labels = [""]
    minutes = (avail["allowance_s"] / 60, avail["downtime_s"] / 60)
    chart.add(f"Allowance {_minutes(minutes[0])}", [minutes[0]])
    used = ""
    if minutes[0] and minutes[1] > minutes[0]:
        used = f" ({minutes[1] / minutes[0]:,.1f}× the allowance)"
    elif minutes[0]:
        used = f" ({100 * minutes[1] / minutes[0]:.0f}% of the allowance)"
    chart.add(f"Downtime {_minutes(minutes[1])}{used}", [minutes[1]])
    return _svg(chart, chart_id)


def _minutes(value: float) -> str:
    return f"{value:,.1f} min" if value < 100 else f"{value:,.0f} min"


def mttr_chart(report: dict[str, Any], chart_id: str) -> str:
    by_priority = report["mttr_by_priority"]
    hours: Callable[[float | None], float | None] = lambda s: (  # noqa: E731
        None if s is None else round(s / 3600, 2)
    )
    chart = pygal.Bar(
        **_chart_options(
            value_formatter=lambda v: f"{v:.0f} h" if v >= 10 or v == 0 else f"{v:.1f} h",
            print_values=False,
            y_title="hours",
            no_data_text="No incident resolved",
        )
    )
    chart.x_labels = [f"{p} ({by_priority[p]['resolved']})" for p in PRIORITIES]
    chart.add("Wall clock", [hours(by_priority[p]["mttr_s"]) for p in PRIORITIES])
    chart.add("Counted time", [hours(by_priority[p]["mttr_counted_s"]) for p in PRIORITIES])
    return _svg(chart, chart_id)


def trend_chart(report: dict[str, Any], chart_id: str) -> str:
    points = [*report["trend"], current_point(report)]
    chart = pygal.Line(
        **_chart_options(
            range=(0, 100),
            y_labels=[0, 25, 50, 75, 100],
            value_formatter=lambda v: f"{v:.0f}%",
            y_title="attainment",
            dots_size=4,
            stroke_style={"width": 2.5},
            margin_right=36,
            truncate_label=-1,
            show_x_guides=False,
        )
    )
    chart.x_labels = [f"{p['month']} ({p['incidents']})" for p in points]
    for metric in METRICS:
        chart.add(
            metric.capitalize(),
            [
                None if p["attainment"][metric] is None else 100 * p["attainment"][metric]
                for p in points
            ],
        )
    return _svg(chart, chart_id)


def current_point(report: dict[str, Any]) -> dict[str, Any]:
    """The report's own month as one more point of its trend."""
    return {
        "month": report["month"],
        "incidents": report["incidents"]["total"],
        "attainment": {m: report["metrics"][m]["attainment"] for m in METRICS},
        "breached": sum(report["metrics"][m]["breached"] for m in METRICS),
        "mtta_s": report["mtta_s"],
        "mttr_s": report["mttr_s"],
        "availability_percent": report["availability"]["percent"],
        "downtime_s": report["availability"]["downtime_s"],
        "credit_percent": report["availability"]["credit_percent"],
    }
