"""The monthly service report as one self-contained HTML file (`slatrail report --format html`).

It renders the JSON of `projections.report` and nothing else, so the page and the JSON always
agree. Charts are server-side SVG from pygal with its JavaScript turned off (`js=[]`); no
fonts, scripts, styles or images are fetched: the file opens offline and prints on A4.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from typing import Any

import pygal
from pygal.style import Style

from domain.durations import format_duration

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


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 600:
        return f"{seconds / 60:.0f} min"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def _attainment_colour(value: float | None) -> str:
    if value is None:
        return NONE_FILL
    if value >= 0.95:
        return GOOD_FILL
    if value >= 0.8:
        return WARN_FILL
    return BAD_FILL


# -- charts ------------------------------------------------------------------------------------


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
    points = [*report["trend"], _current_point(report)]
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


def _current_point(report: dict[str, Any]) -> dict[str, Any]:
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


# -- page --------------------------------------------------------------------------------------

_CSS = """
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --navy:#1e3a5f; --soft:#f8fafc;
        --green:#15803d; --amber:#b45309; --red:#b91c1c; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 FONT_STACK; color: var(--ink); background: #f1f5f9; }
main { max-width: 1180px; margin: 0 auto; padding: 24px; }
header.page { background: var(--navy); color: white; padding: 28px 24px 22px; }
header.page .inner { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header.page h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; letter-spacing: -0.01em; }
header.page p { margin: 0; color: #cbd5e1; }
h2 { font-size: 21px; margin: 0; letter-spacing: -0.01em; }
h3 { font-size: 15px; margin: 22px 0 8px; color: var(--navy); }
section.card { background: white; border: 1px solid var(--line); border-radius: 10px;
               padding: 22px 24px; margin: 0 0 24px; }
.overview td, .overview th { white-space: nowrap; }
.overview table { margin-top: 8px; }
.heading { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: baseline;
           justify-content: space-between; border-bottom: 1px solid var(--line);
           padding-bottom: 12px; margin-bottom: 16px; }
.heading .meta { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px;
         font-weight: 600; border: 1px solid currentColor; vertical-align: 2px; }
.badge.tier { color: var(--navy); }
.badge.final { color: var(--green); }
.badge.provisional { color: var(--amber); }
.kpis { display: grid; grid-template-columns: repeat(6, minmax(0, 1fr)); gap: 12px; }
.kpi { background: var(--soft); border: 1px solid var(--line); border-radius: 8px;
       padding: 10px 12px; }
.kpi .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
              letter-spacing: .04em; }
.kpi .value { font-size: 22px; font-weight: 650; line-height: 1.25; }
.kpi .note { color: var(--muted); font-size: 12px; }
.good { color: var(--green); } .warn { color: var(--amber); } .bad { color: var(--red); }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px;
          margin-top: 18px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px 6px;
         break-inside: avoid; }
figcaption { font-weight: 600; color: var(--navy); margin-bottom: 4px; }
figcaption span { font-weight: 400; color: var(--muted); }
figure svg { display: block; width: 100%; height: auto; }
.tables { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0 24px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; background: var(--soft); }
a { color: var(--navy); }
td.id, tbody td:first-child { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr { break-inside: avoid; }
.empty { color: var(--muted); font-style: italic; margin: 4px 0; }
.explain { color: var(--muted); font-size: 12px; }
footer { color: var(--muted); font-size: 12px; padding: 0 24px 32px; max-width: 1180px;
         margin: 0 auto; }
@media (max-width: 900px) {
  .kpis { grid-template-columns: repeat(3, minmax(0, 1fr)); }
  .charts, .tables { grid-template-columns: 1fr; }
}
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { background: white; font-size: 11px; }
  header.page { background: none; color: var(--ink); padding: 0 0 8px;
                border-bottom: 2px solid var(--navy); }
  header.page .inner, main { padding: 0; max-width: none; }
  header.page p { color: var(--muted); }
  section.card { border: none; padding: 0; margin: 0; }
  section.customer { break-before: page; }
  .kpi .value { font-size: 17px; }
  .kpis { grid-template-columns: repeat(6, minmax(0, 1fr)); gap: 6px; }
  .kpi { padding: 6px 8px; }
  .charts, .tables { grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 8px 16px; }
  figure, .kpis { break-inside: avoid; }
  h3 { break-after: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
""".replace("FONT_STACK", FONT)


def render_html(reports: Sequence[dict[str, Any]], *, generated_at: datetime, source: str) -> str:
    """The whole page: an overview of every (customer, month), then one section each."""
    months = sorted({r["month"] for r in reports})
    period = months[0] if len(months) == 1 else f"{months[0]} – {months[-1]}" if months else "–"
    as_of = reports[0]["as_of"] if reports else "–"
    known = reports[0]["as_known_at"] if reports else None
    sections = "\n".join(_customer_section(r, n) for n, r in enumerate(reports, start=1))
    subtitle = f"as of {as_of}" + (f", as known at {known}" if known else "")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="slatrail">
<title>Monthly service report {escape(period)}</title>
<style>{_CSS}</style>
</head>
<body>
<header class="page"><div class="inner">
<h1>Monthly service report · {escape(period)}</h1>
<p>{len({r["customer"] for r in reports})} customer(s) · {escape(subtitle)} ·
generated {escape(generated_at.strftime("%Y-%m-%d %H:%M UTC"))} · contracts {escape(source)}</p>
</div></header>
<main>
{_overview(reports)}
{sections}
</main>
<footer>
Attainment = met ÷ (met + breached); excluded incidents (resolved with cause customer,
third party, force majeure or maintenance) and clocks still running unbreached are left out.
Availability = 100 × (1 − downtime ÷ month length) in the customer's time zone; the percentage
is truncated, never rounded up. Rules: docs/reports.md.
</footer>
</body>
</html>
"""


def _overview(reports: Sequence[dict[str, Any]]) -> str:
    rows = []
    for n, r in enumerate(reports, start=1):
        a = r["availability"]
        rows.append(
            "<tr>"
            f'<td><a href="#report-{n}">{escape(r["customer_name"] or r["customer"])}</a></td>'
            f"<td>{escape(r['tier'])}</td><td>{escape(r['month'])}</td>"
            f'<td class="num">{r["incidents"]["total"]}</td>'
            + "".join(
                f'<td class="num {_class(r["metrics"][m]["attainment"])}">'
                f"{_pct(r['metrics'][m]['attainment'])}</td>"
                for m in ("response", "resolution")
            )
            + f'<td class="num">{len(r["breaches"])}</td>'
            f'<td class="num {"bad" if a["percent"] < a["target"] else "good"}">'
            f"{a['percent']:.4f}%</td>"
            f'<td class="num">{a["target"]}%</td>'
            f'<td class="num {"bad" if a["credit_percent"] else ""}">'
            f"{a['credit_percent']:g}%</td>"
            "</tr>"
        )
    return f"""<section class="card overview">
<h2>Overview</h2>
<p class="explain">Response and resolution: SLA attainment, met ÷ (met + breached).
Availability in each customer's time zone; credit in percent of the monthly fee.</p>
<table>
<thead><tr><th>Customer</th><th>Tier</th><th>Month</th><th class="num">Incidents</th>
<th class="num">Response</th><th class="num">Resolution</th>
<th class="num">Breaches</th><th class="num">Availability</th><th class="num">Target</th>
<th class="num">Credit</th></tr></thead>
<tbody>{"".join(rows)}</tbody>
</table>
</section>"""


def _class(attainment: float | None) -> str:
    if attainment is None:
        return ""
    return "good" if attainment >= 0.95 else "warn" if attainment >= 0.8 else "bad"


def _kpi(label: str, value: str, note: str = "", css: str = "") -> str:
    return (
        f'<div class="kpi"><div class="label">{escape(label)}</div>'
        f'<div class="value {css}">{escape(value)}</div>'
        f'<div class="note">{escape(note)}</div></div>'
    )


def _customer_section(r: dict[str, Any], n: int) -> str:
    a = r["availability"]
    slug = f"r{n}"
    incidents = r["incidents"]
    below = a["percent"] < a["target"]
    status = (
        '<span class="badge final">final</span>'
        if r["final"]
        else '<span class="badge provisional">provisional</span>'
    )
    excluded = sum(o["seconds_in_month"] for o in a["outages"] if o["excluded"])
    excluded_note = f"; excluded outages not counted: {_duration(excluded)}" if excluded else ""
    kpis = "".join(
        [
            _kpi(
                "Incidents",
                str(incidents["total"]),
                f"{incidents['open']} open · {incidents['excluded']} excluded",
            ),
            _kpi(
                "Availability",
                f"{a['percent']:.3f}%",
                f"target {a['target']}%",
                "bad" if below else "good",
            ),
            _kpi(
                "Downtime",
                _duration(a["downtime_s"]) if a["downtime_s"] else "0",
                f"allowance {_duration(a['allowance_s'])}",
                "bad" if below else "",
            ),
            _kpi(
                "Service credit",
                f"{a['credit_percent']:g}%",
                "of the monthly fee",
                "bad" if a["credit_percent"] else "",
            ),
            _kpi("MTTA", _duration(r["mtta_s"]), f"counted {_duration(r['mtta_counted_s'])}"),
            _kpi("MTTR", _duration(r["mttr_s"]), f"counted {_duration(r['mttr_counted_s'])}"),
        ]
    )
    charts = "".join(
        [
            _figure(
                f"{slug}-attainment",
                "SLA attainment",
                "met ÷ (met + breached)",
                attainment_chart(r, f"{slug}-attainment"),
            ),
            _figure(
                f"{slug}-downtime",
                "Downtime against the allowance",
                f"{a['target']}% of {a['month_s'] / 3600:.0f} h" + excluded_note,
                downtime_chart(r, f"{slug}-downtime"),
            ),
            _figure(
                f"{slug}-mttr",
                "Mean time to resolve by priority",
                "resolved incidents in brackets",
                mttr_chart(r, f"{slug}-mttr"),
            ),
            _figure(
                f"{slug}-trend",
                "Trend",
                "attainment; incidents in brackets",
                trend_chart(r, f"{slug}-trend"),
            ),
        ]
    )
    name = r["customer_name"] or r["customer"]
    return f"""<section class="card customer" id="report-{n}"
 data-customer="{escape(r["customer"])}" data-month="{escape(r["month"])}">
<div class="heading">
<h2>{escape(name)} <span class="badge tier">{escape(r["tier"])}</span> {status}</h2>
<div class="meta">{escape(r["customer"])} · {escape(r["month"])} ({escape(r["timezone"])}) ·
{escape(r["period"]["start"])} → {escape(r["period"]["end"])}</div>
</div>
<div class="kpis">{kpis}</div>
<div class="charts">{charts}</div>
<div class="tables">
<div>{_metrics_table(r)}{_postmortem_table(r)}</div>
<div>{_incidents_table(r)}{_escalations_table(r)}</div>
</div>
{_disputes_table(r)}
{_outages_table(r)}
{_breaches_table(r)}
{_excluded_table(r)}
{_trend_table(r)}
</section>"""


def _figure(figure_id: str, title: str, note: str, svg: str) -> str:
    return (
        f'<figure class="chart" id="{figure_id}"><figcaption id="{figure_id}-caption">'
        f"{escape(title)} <span>· {escape(note)}</span></figcaption>{svg}</figure>"
    )


_CELL_CLASS = {"#": "num", "@": "id"}  # header prefixes: numbers, cells that must not wrap


def _td(value: Any, css: str | None) -> str:
    opening = f'<td class="{css}">' if css else "<td>"
    return f"{opening}{escape(str(value))}</td>"


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> str:
    head = "".join(
        f'<th class="num">{escape(h[1:])}</th>'
        if h.startswith("#")
        else f"<th>{escape(h.removeprefix('@'))}</th>"
        for h in headers
    )
    if not rows:
        return f'<h3>{escape(title)}</h3><p class="empty">{escape(empty)}</p>'
    body = "".join(
        "<tr>"
        + "".join(_td(c, _CELL_CLASS.get(headers[i][:1])) for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return (
        f"<h3>{escape(title)}</h3>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _metrics_table(r: dict[str, Any]) -> str:
    rows = [
        [m.capitalize(), f["met"], f["breached"], _pct(f["attainment"]), f["running"]]
        for m in METRICS
        for f in [r["metrics"][m]]
    ]
    return _table(
        "SLA metrics", ["Metric", "#Met", "#Breached", "#Attainment", "#Still running"], rows, ""
    )


def _incidents_table(r: dict[str, Any]) -> str:
    by = r["incidents"]["by_priority"]
    mttr = r["mttr_by_priority"]
    rows = [
        [
            p,
            by[p],
            mttr[p]["resolved"],
            _duration(mttr[p]["mttr_s"]),
            _duration(mttr[p]["mttr_counted_s"]),
        ]
        for p in PRIORITIES
    ]
    return _table(
        "Incidents by priority",
        ["Priority", "#Incidents", "#Resolved", "#MTTR", "#MTTR counted"],
        rows,
        "",
    )


def _escalations_table(r: dict[str, Any]) -> str:
    e = r["escalations"]
    labels = {"1": "1 support engineer", "2": "2 expert", "3": "3 engineering", "4": "4 management"}
    rows = [[labels[level], count] for level, count in e["by_level"].items()]
    return _table(
        f"Highest escalation level ({e['manual']} escalated by hand)",
        ["Level", "#Incidents"],
        rows,
        "",
    )


def _postmortem_table(r: dict[str, Any]) -> str:
    p = r["postmortems"]
    if not p["required"]:
        return '<h3>Post-mortems</h3><p class="empty">No incident required a post-mortem.</p>'
    rows = [
        ["Required (P1 or outage)", p["required"]],
        ["Published", p["published"]],
        ["On time", p["on_time"]],
        ["Late", p["late"]],
        ["Overdue (not published, past due)", p["overdue"]],
        ["Not yet due", p["not_yet_due"]],
    ]
    due = p["compliance"] is not None
    title = (
        f"Post-mortems · {_pct(p['compliance'])} on time" if due else "Post-mortems · none due yet"
    )
    return _table(title, ["Post-mortems", "#Incidents"], rows, "")


def _disputes_table(r: dict[str, Any]) -> str:
    outcome = {
        "claimed_accepted": "customer's priority accepted",
        "triage_upheld": "triage upheld",
        "changed": "changed to another priority",
    }
    rows = [
        [
            d["incident_id"],
            d["title"],
            d["claimed"],
            d["triaged"],
            d["final"],
            outcome[d["outcome"]],
        ]
        for d in r["disputes"]["items"]
    ]
    return _table(
        "Priority disputes",
        ["Incident", "Title", "Claimed", "Triaged", "Final", "Outcome"],
        rows,
        "No priority dispute this month.",
    )


def _outages_table(r: dict[str, Any]) -> str:
    rows = [
        [
            o["incident_id"],
            o["title"],
            o["start"],
            o["end"] or "still down",
            _duration(o["seconds_in_month"]),
            f"excluded ({o['cause']})" if o["excluded"] else "counted",
        ]
        for o in r["availability"]["outages"]
    ]
    return _table(
        "Outages",
        ["Incident", "Title", "@Down from", "@Until", "#In month", "Counts"],
        rows,
        "No outage this month.",
    )


def _breaches_table(r: dict[str, Any]) -> str:
    if not r["breaches"]:
        return '<h3>Breaches</h3><p class="empty">No SLA breach this month.</p>'
    rows = "".join(
        f'<tr><td class="id">{escape(b["incident_id"])}</td><td>{escape(b["metric"])}</td>'
        f"<td>{escape(b['priority'] or '')}</td>"
        f'<td class="num">{escape(format_duration(b["target_s"]))}</td>'
        f'<td class="num">{escape(format_duration(b["elapsed_s"]))}</td>'
        f'<td class="num bad">+{escape(format_duration(b["overrun_s"]))}</td>'
        f'<td>{escape(b["title"])}<div class="explain">{escape(b["explanation"])}</div></td></tr>'
        for b in r["breaches"]
    )
    return (
        f"<h3>Breaches ({len(r['breaches'])})</h3><table><thead><tr><th>Incident</th>"
        '<th>Metric</th><th>Priority</th><th class="num">Target</th><th class="num">Counted</th>'
        '<th class="num">Over</th><th>Explanation</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _excluded_table(r: dict[str, Any]) -> str:
    if not r["excluded"]:
        return ""
    rows = [[e["incident_id"], e["title"], e["cause"].replace("_", " ")] for e in r["excluded"]]
    return _table("Excluded incidents (not counted)", ["Incident", "Title", "Cause"], rows, "")


def _trend_table(r: dict[str, Any]) -> str:
    points = [*r["trend"], _current_point(r)]
    rows = [
        [
            p["month"],
            p["incidents"],
            _pct(p["attainment"]["response"]),
            _pct(p["attainment"]["resolution"]),
            p["breached"],
            _duration(p["mttr_s"]),
            f"{p['availability_percent']:.4f}%",
            f"{p['credit_percent']:g}%",
        ]
        for p in points
    ]
    return _table(
        "Trend",
        [
            "Month",
            "#Incidents",
            "#Response met",
            "#Resolution met",
            "#Breaches",
            "#MTTR",
            "#Availability",
            "#Credit",
        ],
        rows,
        "",
    )
