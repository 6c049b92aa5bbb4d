"""The HTML report as a person sees it: `slatrail demo` writes it, headless Chromium renders it.

Chromium is driven through the DevTools protocol (websocket-client), which reports console
errors, uncaught exceptions and every network request the page makes. A full-page screenshot
and a PDF print are kept in `test-artifacts/` for a person to look at.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]


def chromium_path() -> str | None:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass
class Page:
    """A DevTools session on one page, recording what the page reports."""

    socket: Any
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    _next_id: int = 0

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        self.socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._observe(message)

    def wait_for(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.socket.settimeout(max(0.1, deadline - time.monotonic()))
            message = json.loads(self.socket.recv())
            self._observe(message)
            if message.get("method") == event:
                params: dict[str, Any] = message.get("params", {})
                return params
        raise TimeoutError(event)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _observe(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.console_errors.append(
                " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            )
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console_errors.append(str(details.get("exception", details).get("description")))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.console_errors.append(
                f"{params['entry'].get('url', '')}: {params['entry']['text']}"
            )
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "Chromium is not installed (Debian package `chromium`; `.ci/ensure-system-deps` "
            "installs it when run as root): the HTML report cannot be checked in a browser"
        )
    websocket = pytest.importorskip(
        "websocket", reason="websocket-client (a test dependency) is needed to drive Chromium"
    )
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start (exit code {process.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            targets = json.load(answer)
        target = next(t for t in targets if t["type"] == "page")
        socket = websocket.create_connection(
            target["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )
        page = Page(socket)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        yield page
        socket.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report `slatrail demo` writes for its simulated month, through the real CLI."""
    workdir = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        [sys.executable, "-m", "slatrail.infra.cli", "--store", f"sqlite:///{workdir / 'demo.db'}",
         "demo", "--out-dir", str(workdir)],
        capture_output=True, text=True, timeout=300, cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("HTML report: "))
    path = Path(line.removeprefix("HTML report: "))
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def rendered(browser: Page, demo_report: Path) -> Page:
    browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=900,
                 deviceScaleFactor=1, mobile=False)  # fmt: skip
    browser.send("Page.navigate", url=demo_report.as_uri())
    browser.wait_for("Page.loadEventFired")
    return browser


def test_every_customer_section_of_the_demo_report_shows_its_four_charts(rendered: Page) -> None:
    sections = rendered.evaluate(
        """[...document.querySelectorAll('section.customer')].map(s => ({
            customer: s.dataset.customer,
            charts: s.querySelectorAll('figure.chart svg').length,
            drawn: [...s.querySelectorAll('figure.chart svg')].map(
                svg => svg.querySelectorAll('rect, path, circle, text').length),
            width: Math.round(s.querySelector('figure.chart svg').getBoundingClientRect().width)
        }))"""
    )
    assert [s["customer"] for s in sections] == ["acme-rtc", "brightcall", "chatnest"]
    for section in sections:
        assert section["charts"] == 4, section
        assert all(count > 10 for count in section["drawn"]), section
        assert section["width"] > 300, section


def test_the_report_page_logs_no_console_error(rendered: Page) -> None:
    assert rendered.console_errors == []


def test_the_report_page_fetches_nothing_beyond_its_own_file(
    rendered: Page, demo_report: Path
) -> None:
    assert rendered.requests == [demo_report.as_uri()]


def test_a_screenshot_and_a_print_of_the_report_are_kept_as_artifacts(rendered: Page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    height = rendered.evaluate("document.documentElement.scrollHeight")
    rendered.send("Emulation.setDeviceMetricsOverride", width=1280, height=int(height),
                  deviceScaleFactor=1, mobile=False)  # fmt: skip
    shot = rendered.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    png = ARTIFACTS / "report-browser.png"
    png.write_bytes(base64.b64decode(shot["data"]))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    printed = rendered.send("Page.printToPDF", printBackground=True, preferCSSPageSize=True)
    pdf = base64.b64decode(printed["data"])
    (ARTIFACTS / "report-print.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF")
    # The overview, then each of the three customers from a new page.
    assert len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf)) >= 4
    assert rendered.console_errors == []
