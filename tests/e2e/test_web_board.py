"""The live SLA board as a support manager sees it: `slatrail web` serves it, headless Chromium
renders it, an `ingest` appears on it without a reload (docs/web.md, "Board")."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slatrail.infra.web.tokens import add_token
from tests.builders import jsonl, wire
from tests.e2e.test_report_browser import ARTIFACTS, Page, browser
from tests.servers import free_port
from tests.web_helpers import SCRIPT

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # the module-scoped Chromium fixture


def _cli(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slatrail.infra.cli", "--store",
         f"sqlite:///{workdir / 'board.db'}", *args],
        capture_output=True, text=True, timeout=120, cwd=workdir,
    )  # fmt: skip


def _get(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Board:
    def __init__(self, base: str, workdir: Path, tokens: dict[str, str]) -> None:
        self.base, self.workdir, self.tokens = base, workdir, tokens


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    workdir = tmp_path_factory.mktemp("board")
    (workdir / "script.jsonl").write_text(jsonl(SCRIPT), encoding="utf-8")
    done = _cli(workdir, "ingest", str(workdir / "script.jsonl"))
    assert done.returncode == 0, done.stderr
    path = workdir / "tokens.json"
    tokens = {
        "auditor": add_token(path, "support-lead", "auditor", []),
        "viewer": add_token(path, "acme-manager", "viewer", ["acme-rtc"]),
    }
    port = free_port()
    log = (workdir / "web.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "slatrail.infra.cli", "--store", f"sqlite:///{workdir / 'board.db'}",
         "web", "--listen", f"127.0.0.1:{port}", "--tokens", str(path)],
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (workdir / "web.log").read_text()
            assert time.monotonic() < deadline, "slatrail web did not become ready"
            time.sleep(0.1)
        yield Board(base, workdir, tokens)
        process.terminate()
        assert process.wait(15) == 0, (workdir / "web.log").read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()


def _row_ids(page: Page) -> list[str]:
    ids: list[str] = page.evaluate(
        "[...document.querySelectorAll('#rows tr[data-incident]')].map(r => r.dataset.incident)"
    )
    return ids


def test_the_board_shows_open_incidents_by_time_left_and_updates_after_an_ingest(
    browser: Page, board: Board
) -> None:
    token = board.tokens["auditor"]
    status, html = _get(board.base + "/", token)  # the list without any script
    assert status == 200 and b'data-incident="A-1"' in html and b'data-incident="A-2"' not in html
    expected = [
        r["incident_id"] for r in json.loads(_get(board.base + "/v1/board", token)[1])["rows"]
    ]
    assert sorted(expected) == ["A-1", "A-3", "B-1"]  # A-2 is resolved

    browser.console_errors.clear()
    browser.requests.clear()
    browser.send("Network.setExtraHTTPHeaders", headers={"Authorization": f"Bearer {token}"})
    browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=800,
                 deviceScaleFactor=1, mobile=False)  # fmt: skip
    browser.send("Page.navigate", url=board.base + "/")
    browser.wait_for("Page.loadEventFired")
    assert _row_ids(browser) == expected
    assert browser.evaluate("document.querySelectorAll('#rows tr.breached').length") >= 1
    assert (
        browser.evaluate(
            "getComputedStyle(document.querySelector('td.clock.breached .status')).color"
        )
        == "rgb(255, 255, 255)"
    )
    assert wait_for_live(browser)

    now = datetime.now(UTC).replace(microsecond=0)
    fresh = wire("reported", now - timedelta(minutes=1),
                 {"customer": "acme-rtc", "title": "new outage", "priority": "P1"},
                 incident_id="A-9")  # fmt: skip
    (board.workdir / "more.jsonl").write_text(jsonl([fresh]), encoding="utf-8")
    done = _cli(board.workdir, "ingest", str(board.workdir / "more.jsonl"))
    assert done.returncode == 0, done.stderr
    ingested = time.monotonic()
    while "A-9" not in _row_ids(browser):
        assert time.monotonic() - ingested < 2.0, "the board did not update within 2 s"
        time.sleep(0.05)
    countdown = "document.querySelector('tr[data-incident=\"A-9\"] time.left').textContent"
    first = browser.evaluate(countdown)
    assert "left" in first
    ticking = time.monotonic()
    while browser.evaluate(countdown) == first:  # the page counts down by itself, every second
        assert time.monotonic() - ticking < 5.0, f"the countdown stayed at {first!r}"
        time.sleep(0.1)
    browser.send("Input.dispatchKeyEvent", type="keyDown", key="Tab", code="Tab",
                 windowsVirtualKeyCode=9)  # fmt: skip
    assert browser.evaluate("document.activeElement.className") == "skip"

    ARTIFACTS.mkdir(exist_ok=True)
    shot = browser.send("Page.captureScreenshot", format="png")
    import base64

    (ARTIFACTS / "web-board.png").write_bytes(base64.b64decode(shot["data"]))
    assert browser.console_errors == []
    assert all(url.startswith(board.base) for url in browser.requests), browser.requests
    browser.send("Network.setExtraHTTPHeaders", headers={})


def wait_for_live(page: Page, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate("document.getElementById('live').textContent") == "live":
            return True
        time.sleep(0.05)
    return False


def test_a_viewer_board_holds_only_its_customers(board: Board) -> None:
    viewer = board.tokens["viewer"]
    status, html = _get(board.base + "/", viewer)
    assert status == 200 and b'data-incident="A-1"' in html and b'data-incident="B-1"' not in html
    assert b"brightcall" not in html  # not even in the customer filter
    for route in ("/", "/board/rows", "/v1/board", "/v1/board/events"):
        route += "?customer=brightcall"
        assert _get(board.base + route, viewer)[0] == 404, route
    rows = json.loads(_get(board.base + "/v1/board", viewer)[1])["rows"]
    assert {r["customer"] for r in rows} == {"acme-rtc"}
    assert _get(board.base + "/", "slt_wrong")[0] == 401


def test_a_second_server_on_the_same_address_is_a_usage_error(board: Board) -> None:
    done = _cli(board.workdir, "web", "--listen", board.base.removeprefix("http://"),
                "--tokens", str(board.workdir / "tokens.json"))  # fmt: skip
    assert done.returncode == 2
    assert "cannot listen on" in done.stderr and "Traceback" not in done.stderr
