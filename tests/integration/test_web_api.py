"""The read API through a real uvicorn server on a loopback port, against a real store: every
route answers what the matching CLI command prints with `--format json`, pages with a stable
cursor, and keeps customers apart (docs/web.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from slatrail.infra.cli import main
from slatrail.infra.settings import Settings
from slatrail.infra.web.tokens import add_token, remove_token
from tests.builders import jsonl
from tests.web_helpers import SCRIPT, Web, running_web

pytestmark = pytest.mark.integration

AS_OF = "2026-10-06T12:00:00Z"
ROUTES = [
    "/v1/incidents",
    "/v1/incidents/A-1",
    "/v1/incidents/A-1/audit",
    "/v1/escalations",
    "/v1/reports/acme-rtc/2026-10",
    "/openapi.json",
]


def _ingest(store: str, tmp_path: Path) -> None:
    path = tmp_path / "script.jsonl"
    path.write_text(jsonl(SCRIPT), encoding="utf-8")
    assert main(["--store", store, "ingest", str(path)]) == 0


@pytest.fixture(scope="module")
def sqlite_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    tmp_path = tmp_path_factory.mktemp("web")
    store = f"sqlite:///{tmp_path / 'web.db'}"
    _ingest(store, tmp_path)
    with running_web(Settings(store=store), tmp_path / "tokens.json") as web:
        yield web


def _cli(capsys: pytest.CaptureFixture[str], store: str) -> Callable[..., Any]:
    def run(*args: str) -> Any:
        capsys.readouterr()
        assert main(["--store", store, *args]) == 0
        return json.loads(capsys.readouterr().out)

    return run


def test_every_route_answers_what_the_cli_prints(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _ingest(store_url, tmp_path)
    cli = _cli(capsys, store_url)
    at = f"as_of={AS_OF}"
    with running_web(Settings(store=store_url), tmp_path / "tokens.json") as web:
        listed = web.get(f"/v1/incidents?{at}")
        assert listed.status == 200
        assert listed.json() == {
            "items": cli("sla", "--as-of", AS_OF, "--format", "json"),
            "next_cursor": None,
        }
        mine = web.get(f"/v1/incidents?{at}&customer=acme-rtc").json()["items"]
        assert mine == cli("sla", "--as-of", AS_OF, "--customer", "acme-rtc", "--format", "json")
        assert [i["incident_id"] for i in mine] == ["A-1", "A-2", "A-3"]
        one = web.get(f"/v1/incidents/A-1?{at}").json()
        assert [one] == cli("sla", "--as-of", AS_OF, "--incident", "A-1", "--explain",
                            "--format", "json")  # fmt: skip
        assert web.get(f"/v1/incidents/A-2/audit?{at}").json() == cli(
            "audit", "A-2", "--as-of", AS_OF, "--format", "json"
        )
        assert web.get(f"/v1/escalations?{at}").json() == cli(
            "escalations", "--as-of", AS_OF, "--format", "json"
        )
        report = web.get(f"/v1/reports/acme-rtc/2026-10?{at}")
        assert report.json() == cli("report", "--month", "2026-10", "--customer", "acme-rtc",
                                    "--as-of", AS_OF, "--format", "json")  # fmt: skip
        csv = web.get(f"/v1/reports/acme-rtc/2026-10?{at}&format=csv")
        assert csv.headers["content-type"].startswith("text/csv")
        capsys.readouterr()
        main(["--store", store_url, "report", "--month", "2026-10", "--customer", "acme-rtc",
              "--as-of", AS_OF, "--format", "csv"])  # fmt: skip
        assert csv.body.decode() == capsys.readouterr().out
        html = web.get(f"/v1/reports/acme-rtc/2026-10?{at}&format=html")
        assert html.headers["content-type"].startswith("text/html")
        assert b'data-customer="acme-rtc"' in html.body
        assert "/v1/incidents/{incident_id}" in web.get("/openapi.json").json()["paths"]


def test_filters_and_a_stable_cursor(sqlite_web: Web) -> None:
    web = sqlite_web
    every = web.get(f"/v1/incidents?as_of={AS_OF}").json()["items"]
    seen, cursor, pages = [], None, 0
    while True:
        query = f"/v1/incidents?as_of={AS_OF}&limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = web.get(query).json()
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == every and pages == len(every) == 4
    first = web.get(f"/v1/incidents?as_of={AS_OF}&limit=1").json()["next_cursor"]
    other = web.get(f"/v1/incidents?as_of={AS_OF}&limit=1&priority=P1&cursor={first}")
    assert other.status == 400 and other.json()["code"] == "usage"
    assert web.get(f"/v1/incidents?cursor=bm9wZQ&as_of={AS_OF}").status == 400
    p1 = web.get(f"/v1/incidents?as_of={AS_OF}&priority=P1").json()["items"]
    assert [i["incident_id"] for i in p1] == ["B-1", "A-3"]
    resolved = web.get(f"/v1/incidents?as_of={AS_OF}&state=resolved").json()["items"]
    assert [i["incident_id"] for i in resolved] == ["A-2"]
    breached = web.get(f"/v1/incidents?as_of={AS_OF}&status=breached").json()["items"]
    assert breached and all(
        any(m["status"] == "breached" for m in i["metrics"].values()) for i in breached
    )


def test_the_list_selects_a_reported_window_and_pages_what_the_whole_answer_holds(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_url
    _ingest(store, tmp_path)
    assert main(["--store", store, "replay"]) == 0
    cli = _cli(capsys, store)
    window = "since=2026-10-05T10:00:00Z&until=2026-10-06T00:00:00Z"
    for from_read_model in (False, True):
        with running_web(
            Settings(store=store),
            tmp_path / f"tokens-{from_read_model}.json",
            from_read_model=from_read_model,
        ) as web:
            every = web.get(f"/v1/incidents?as_of={AS_OF}").json()["items"]
            assert every == cli("sla", "--as-of", AS_OF, "--format", "json")
            inside = web.get(f"/v1/incidents?as_of={AS_OF}&{window}").json()
            assert [i["incident_id"] for i in inside["items"]] == ["A-2", "B-1"]
            assert inside["items"] == cli(
                "sla", "--as-of", AS_OF, "--since", "2026-10-05T10:00:00Z",
                "--until", "2026-10-06T00:00:00Z", "--format", "json",
                *(["--from-read-model"] if from_read_model else []),
            )  # fmt: skip
            for filters in ("state=open", "state=resolved", "priority=P1", "customer=acme-rtc"):
                whole = web.get(f"/v1/incidents?as_of={AS_OF}&{filters}").json()["items"]
                paged, cursor = [], None
                while True:
                    more = f"&cursor={cursor}" if cursor else ""
                    page = web.get(f"/v1/incidents?as_of={AS_OF}&{filters}&limit=1{more}").json()
                    paged += page["items"]
                    cursor = page["next_cursor"]
                    if cursor is None:
                        break
                assert whole and paged == whole, (filters, from_read_model)
            viewer = web.get(f"/v1/incidents?as_of={AS_OF}&limit=2", token="viewer").json()
            assert [i["incident_id"] for i in viewer["items"]] == ["A-1", "A-2"]
            bad = web.get(f"/v1/incidents?as_of={AS_OF}&since=yesterday")
            assert bad.status == 400 and bad.json()["code"] == "usage"


def test_no_valid_token_is_401_and_a_removed_token_stops_working(sqlite_web: Web) -> None:
    web = sqlite_web
    for route in ROUTES:
        for token in (None, "wrong", "slt_" + "x" * 43, "x" * 5000):
            answer = web.get(route, token=token)
            assert answer.status == 401, (route, token)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == "unauthenticated"
            assert answer.headers["www-authenticate"].startswith("Bearer")
        basic = web.get(route, token=None, Authorization="Basic YTpi")
        assert basic.status == 401
    assert web.get("/v1/incidents/A-1", token="removed").status == 200
    remove_token(web.tokens_file, "gone")
    assert web.get("/v1/incidents/A-1", token="removed").status == 401
    from datetime import UTC, datetime

    expired = add_token(web.tokens_file, "old", "auditor", [], datetime(2026, 1, 1, tzinfo=UTC))
    assert web.get("/v1/incidents/A-1", token=expired).status == 401


def test_a_viewer_sees_only_its_customers_and_other_ones_are_404(sqlite_web: Web) -> None:
    web = sqlite_web
    unknown = web.get("/v1/incidents/NOPE-1", token="viewer")
    hidden = web.get("/v1/incidents/B-1", token="viewer")
    assert unknown.status == hidden.status == 404
    assert {k: v for k, v in hidden.json().items() if k not in ("detail", "instance")} == {
        k: v for k, v in unknown.json().items() if k not in ("detail", "instance")
    }
    for route in ["/v1/incidents/B-1/audit", "/v1/incidents?customer=brightcall",
                  "/v1/escalations?customer=brightcall", "/v1/reports/brightcall/2026-10",
                  "/v1/reports/brightcall/2026-10?format=csv",
                  "/v1/reports/no-such-customer/2026-10"]:  # fmt: skip
        answer = web.get(route, token="viewer")
        assert answer.status == 404, route
        assert answer.json()["code"] == "not_found"
    listed = web.get(f"/v1/incidents?as_of={AS_OF}", token="viewer").json()["items"]
    assert {i["customer"] for i in listed} == {"acme-rtc"}
    escalated = web.get(f"/v1/escalations?as_of={AS_OF}", token="viewer").json()
    assert escalated and {e["customer"] for e in escalated} == {"acme-rtc"}
    assert web.get("/v1/incidents/A-1", token="viewer").status == 200
    assert web.get("/v1/reports/acme-rtc/2026-10", token="viewer").status == 200


@pytest.mark.parametrize(
    ("route", "status", "code"),
    [
        ("/v1/incidents?as_of=9999-01-01T00:00:00Z", 400, "usage"),
        ("/v1/incidents?as_of=99999-01-01T00:00:00Z", 400, "usage"),
        ("/v1/incidents?as_known_at=1969-12-31T23:59:59Z", 400, "usage"),
        ("/v1/incidents?as_of=2026-10-06T12:00:00", 400, "usage"),
        ("/v1/incidents?limit=100000", 400, "usage"),
        ("/v1/incidents?limit=0", 400, "usage"),
        ("/v1/incidents?state=open%27%20OR%201=1", 400, "usage"),
        ("/v1/incidents/A-1/../../../etc/passwd", 404, "not_found"),
        ("/v1/incidents/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 404, "not_found"),
        ("/v1/reports/acme-rtc/2026-13", 400, "usage"),
        ("/v1/reports/acme-rtc/9999-01", 400, "usage"),
        ("/v1/reports/acme-rtc/2026-10?format=xml", 400, "usage"),
        ("/v1/reports/acme-rtc/2026-10.json", 400, "usage"),
        ("/v1/incidents?customer=" + "a" * 3000, 414, "uri_too_long"),
        ("/nothing/here", 404, "not_found"),
    ],
)
def test_bad_inputs_get_a_problem_answer(
    sqlite_web: Web, route: str, status: int, code: str
) -> None:
    answer = sqlite_web.get(route)
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == status and problem["code"] == code
    assert problem["type"] == f"/problems/{code}" and problem["title"] and problem["detail"]


def test_a_request_body_is_refused_and_the_rate_limit_answers_429(tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    store = f"sqlite:///{tmp_path / 'web.db'}"
    _ingest(store, tmp_path)
    with running_web(Settings(store=store), tmp_path / "tokens.json", web_rate_burst=3,
                     web_rate_per_s=0.5) as web:  # fmt: skip
        request = urllib.request.Request(
            web.base + "/v1/incidents", data=b"x" * 10, method="GET",
            headers={"Authorization": f"Bearer {web.tokens['admin']}"},
        )  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 413
        statuses = [web.get("/v1/incidents/A-1").status for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
        limited = web.get("/v1/incidents/A-1")
        assert int(limited.headers["retry-after"]) >= 1
        assert web.get("/v1/incidents/A-1", token="viewer").status == 200  # per token


def test_the_board_login_sets_a_cookie_that_authenticates(sqlite_web: Web) -> None:
    import http.client
    import urllib.parse

    host, port = sqlite_web.base.removeprefix("http://").split(":")

    def post(token: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        body = urllib.parse.urlencode({"token": token})
        conn.request("POST", "/login", body=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        return conn.getresponse()

    assert post("slt_wrong").status == 401
    assert post("x" * 2000).status == 413
    answer = post(sqlite_web.tokens["viewer"])
    assert answer.status == 303 and answer.getheader("location") == "/"
    cookie = answer.getheader("set-cookie") or ""
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    value = cookie.split(";")[0]
    page = sqlite_web.get("/", token=None, Cookie=value)
    assert page.status == 200 and b'data-incident="A-1"' in page.body
    assert b'data-incident="B-1"' not in page.body
    assert sqlite_web.get("/login", token=None).status == 200


def test_tokens_add_prints_the_token_once_and_list_never_shows_a_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.json"
    assert main(["tokens", "--tokens", str(path), "add", "am", "--role", "viewer",
                 "--customer", "acme-rtc"]) == 0  # fmt: skip
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("slt_") and token not in out.err and token not in path.read_text()
    assert main(["tokens", "--tokens", str(path), "list", "--format", "json"]) == 0
    listed = capsys.readouterr().out
    assert json.loads(listed) == [{"name": "am", "role": "viewer", "customers": ["acme-rtc"]}]
    assert main(["tokens", "--tokens", str(path), "add", "x", "--role", "viewer"]) == 2
    assert main(["tokens", "--tokens", str(path), "remove", "nobody"]) == 1
    assert main(["tokens", "--tokens", str(path), "remove", "am"]) == 0


def test_a_request_over_the_time_limit_answers_503(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'web.db'}"
    _ingest(store, tmp_path)
    with running_web(Settings(store=store), tmp_path / "tokens.json",
                     web_request_timeout_s=0.000001) as web:  # fmt: skip
        answer = web.get("/v1/incidents")
        assert answer.status == 503 and answer.json()["code"] == "timeout"
