"""The monthly service report as one self-contained HTML file (`slatrail report --format html`).

It renders the JSON of `projections.report` and nothing else, so the page and the JSON always
agree. This module turns each report into the figures a person reads (formatted strings); the
Jinja2 template `templates/report.html.j2` (autoescape on) lays them out, with the stylesheet
`templates/report.css` inlined and the charts of `infra.report_charts` as inline SVG. No fonts,
scripts, styles or images are fetched: the file opens offline and prints on A4.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from slatrail.domain.durations import format_duration
from slatrail.infra.render import terminal_safe
from slatrail.infra.report_charts import (
    METRICS,
    PRIORITIES,
    attainment_chart,
    current_point,
    downtime_chart,
    mttr_chart,
    trend_chart,
)

_CELL_CLASS = {"#": "num", "@": "id"}  # header prefixes: numbers, cells that must not wrap


def _visible(value: Any) -> Any:
    """Every interpolated text with its control characters shown as escapes (`\\x1b`), as on
    a terminal: a page holds no ESC sequence, carriage return or bidi override."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return terminal_safe(value)
    return value


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("slatrail.infra", "templates"),
        autoescape=True,
        keep_trailing_newline=True,
        finalize=_visible,
    )


@cache
def stylesheet() -> Markup:
    """The page's CSS (package data), inlined into its `<style>`."""
    return Markup(
        (files("slatrail.infra") / "templates" / "report.css").read_text(encoding="utf-8")
    )


def render_html(
    reports: Sequence[dict[str, Any]],
    *,
    generated_at: datetime,
    source: str,
    checkpoint: dict[str, Any] | None = None,
) -> str:
    """The whole page: an overview of every (customer, month), then one section each."""
    months = sorted({r["month"] for r in reports})
    period = months[0] if len(months) == 1 else f"{months[0]} – {months[-1]}" if months else "–"
    as_of = reports[0]["as_of"] if reports else "–"
    known = reports[0]["as_known_at"] if reports else None
    used = sorted({v for r in reports for v in r.get("contract_versions") or []})
    versions = f", under contract version(s) {', '.join(map(str, used))}" if used else ""
    page = _environment().get_template("report.html.j2")
    return page.render(
        css=stylesheet(),
        period=period,
        customers=len({r["customer"] for r in reports}),
        subtitle=f"as of {as_of}" + (f", as known at {known}" if known else "") + versions,
        generated=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        source=source,
        overview=[_overview_row(r, n) for n, r in enumerate(reports, start=1)],
        sections=[_section(r, n) for n, r in enumerate(reports, start=1)],
        checkpoint=checkpoint,
    )


# -- formatting --------------------------------------------------------------------------------


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


def _class(attainment: float | None) -> str:
    if attainment is None:
        return ""
    return "good" if attainment >= 0.95 else "warn" if attainment >= 0.8 else "bad"


# -- the page's parts --------------------------------------------------------------------------


def _overview_row(r: dict[str, Any], n: int) -> dict[str, Any]:
    a, metrics = r["availability"], r["metrics"]
    return {
        "n": n,
        "name": r["customer_name"] or r["customer"],
        "tier": r["tier"],
        "month": r["month"],
        "incidents": r["incidents"]["total"],
        "response": _pct(metrics["response"]["attainment"]),
        "response_css": _class(metrics["response"]["attainment"]),
        "resolution": _pct(metrics["resolution"]["attainment"]),
        "resolution_css": _class(metrics["resolution"]["attainment"]),
        "breaches": len(r["breaches"]),
        "availability": f"{a['percent']:.4f}%",
        "availability_css": "bad" if a["percent"] < a["target"] else "good",
        "target": f"{a['target']}%",
        "credit": f"{a['credit_percent']:g}%",
        "credit_css": "bad" if a["credit_percent"] else "",
    }


def _kpi(label: str, value: str, note: str = "", css: str = "") -> dict[str, str]:
    return {"label": label, "value": value, "note": note, "css": css}


def _figure(figure_id: str, title: str, note: str, svg: str) -> dict[str, Any]:
    return {"id": figure_id, "title": title, "note": note, "svg": Markup(svg)}


def _section(r: dict[str, Any], n: int) -> dict[str, Any]:
    a = r["availability"]
    slug = f"r{n}"
    incidents = r["incidents"]
    below = a["percent"] < a["target"]
    excluded = sum(o["seconds_in_month"] for o in a["outages"] if o["excluded"])
    excluded_note = f"; excluded outages not counted: {_duration(excluded)}" if excluded else ""
    return {
        "n": n,
        "customer": r["customer"],
        "month": r["month"],
        "name": r["customer_name"] or r["customer"],
        "tier": r["tier"],
        "final": r["final"],
        "timezone": r["timezone"],
        "start": r["period"]["start"],
        "end": r["period"]["end"],
        "kpis": [
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
        ],
        "figures": [
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
        ],
        "metrics": _metrics_table(r),
        "postmortems": _postmortem_table(r),
        "incidents": _incidents_table(r),
        "escalations": _escalations_table(r),
        "disputes": _disputes_table(r),
        "outages": _outages_table(r),
        "breaches": _breaches(r),
        "excluded": _excluded_table(r),
        "trend": _trend_table(r),
    }


def _table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str
) -> dict[str, Any]:
    """A table for the template: headers as (text, class), each cell as (text, class); a
    header's prefix `#` marks a number column, `@` one whose cells must not wrap."""
    classes = [_CELL_CLASS.get(h[:1]) for h in headers]
    return {
        "title": title,
        "headers": [
            (h[1:] if h[:1] in _CELL_CLASS else h, css)
            for h, css in zip(headers, classes, strict=True)
        ],
        "rows": [[(str(c), classes[i]) for i, c in enumerate(row)] for row in rows],
        "empty": empty,
    }


def _metrics_table(r: dict[str, Any]) -> dict[str, Any]:
    rows = [
        [m.capitalize(), f["met"], f["breached"], _pct(f["attainment"]), f["running"]]
        for m in METRICS
        for f in [r["metrics"][m]]
    ]
    return _table(
        "SLA metrics", ["Metric", "#Met", "#Breached", "#Attainment", "#Still running"], rows, ""
    )


def _incidents_table(r: dict[str, Any]) -> dict[str, Any]:
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


def _escalations_table(r: dict[str, Any]) -> dict[str, Any]:
    e = r["escalations"]
    labels = {"1": "1 support engineer", "2": "2 expert", "3": "3 engineering", "4": "4 management"}
    rows = [[labels[level], count] for level, count in e["by_level"].items()]
    return _table(
        f"Highest escalation level ({e['manual']} escalated by hand)",
        ["Level", "#Incidents"],
        rows,
        "",
    )


def _postmortem_table(r: dict[str, Any]) -> dict[str, Any]:
    p = r["postmortems"]
    if not p["required"]:
        return _table("Post-mortems", [], [], "No incident required a post-mortem.")
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


def _disputes_table(r: dict[str, Any]) -> dict[str, Any]:
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


def _outages_table(r: dict[str, Any]) -> dict[str, Any]:
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


def _breaches(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "rows": [
            {
                "incident_id": b["incident_id"],
                "metric": b["metric"],
                "priority": b["priority"] or "",
                "target": format_duration(b["target_s"]),
                "elapsed": format_duration(b["elapsed_s"]),
                "overrun": format_duration(b["overrun_s"]),
                "title": b["title"],
                "explanation": b["explanation"],
            }
            for b in r["breaches"]
        ]
    }


def _excluded_table(r: dict[str, Any]) -> dict[str, Any] | None:
    if not r["excluded"]:
        return None
    rows = [[e["incident_id"], e["title"], e["cause"].replace("_", " ")] for e in r["excluded"]]
    return _table("Excluded incidents (not counted)", ["Incident", "Title", "Cause"], rows, "")


def _trend_table(r: dict[str, Any]) -> dict[str, Any]:
    points = [*r["trend"], current_point(r)]
    rows = [
        [
            p["month"],
            p["incidents"],
            _pct(p["attainment"]["response"]),
            _pct(p["attainment"]["resolution"]),
            p["breached"],
            _duration(p["mttr_s"]),
            "–" if p["availability_percent"] is None else f"{p['availability_percent']:.4f}%",
            "–" if p["credit_percent"] is None else f"{p['credit_percent']:g}%",
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
