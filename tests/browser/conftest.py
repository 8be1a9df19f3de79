"""Browser tests: Debian's Chromium driven by Playwright against a real ``runlane ui`` subprocess.

One browser per test module (starting Chromium is most of a test's cost); a fresh page per test, which
fails the test on any JavaScript error, console error or failed request the test did not expect.
Screenshots of every view go to ``$RUNLANE_UI_SCREENSHOTS`` (default ``build/ui-screenshots``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, sync_playwright

from tests.servers import Server, launch, wait_ready

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RUNLANE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("RUNLANE_UI_SCREENSHOTS") or ROOT / "build" / "ui-screenshots")
#: How long a browser assertion waits for the page to get there (polling, never a bare sleep).
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium)", pytrace=False)
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@contextmanager
def ui_server(store: Path, log: Path) -> Iterator[Server]:
    """``runlane ui --dir STORE --port 0 --no-browser`` until the block ends."""
    process = launch(["ui", "--dir", str(store), "--port", "0", "--no-browser"], log)
    server = Server(process, "", log)
    try:
        server.url = wait_ready(process, log)
        yield server
    finally:
        server.stop()


@dataclass
class Watched:
    """A page and what went wrong on it; ``allow`` lists URL patterns of failures the test expects."""

    page: Page
    base: str
    problems: list[str] = field(default_factory=list)
    allow: list[re.Pattern[str]] = field(default_factory=list)

    def open(self, path: str) -> Page:
        self.page.goto(self.base + path)
        return self.page

    def expect_failure(self, url_pattern: str) -> None:
        self.allow.append(re.compile(url_pattern))

    def allowed(self, text: str) -> bool:
        return any(pattern.search(text) for pattern in self.allow)

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def watch(browser: Browser, base: str) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1440, "height": 960})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    watched = Watched(page, base)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if message.location else ""
            text = f"console error: {message.text} ({where})"
            if not watched.allowed(text):
                watched.problems.append(text)

    def on_response(response: Response) -> None:
        if response.status >= 400 and not watched.allowed(response.url):
            watched.problems.append(f"HTTP {response.status} for {response.url}")

    def on_failed(request: Request) -> None:
        # A fetch the page aborted itself (it navigated on, or a newer query replaced it) is not a failure.
        failure = request.failure or ""
        if "ERR_ABORTED" not in failure and not watched.allowed(request.url):
            watched.problems.append(f"request failed: {request.url} ({failure})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.problems.append(f"JavaScript error: {error}"))
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    yield watched
    context.close()
    assert not watched.problems, "the page had errors:\n" + "\n".join(watched.problems)
