"""The dashboard in a real browser: Debian's Chromium, headless, driven by Selenium through the
system's chromedriver, against the sandbox on a free loopback port.

Without Chromium installed (apt-get install chromium chromium-driver) the browser tests are
skipped, except in CI (CI=true), where a missing browser fails them: .ci/run installs it."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_server.app import SandboxApp, create_app
from mock_server.settings import Settings
from tests.conftest import LiveServer, ManualTime

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
_NETWORK = re.compile(r"^(https?|wss?|ftp)://", re.IGNORECASE)
_REFUSED = re.compile(r"^(?P<url>\S+) - Failed to load resource: the server responded with a "
                      r"status of (?P<status>\d+) ")
DOCS = Path(__file__).resolve().parents[2] / "docs"
# every flag that keeps Chromium from talking to anybody but the page's own server
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-default-browser-check", "--disable-default-apps", "--disable-extensions",
    "--disable-domain-reliability", "--no-proxy-server", "--window-size=1360,1000",
)


def _need_chromium() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if not missing:
        return
    message = f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + ": CI must run the browser tests", pytrace=False)
    pytest.skip(message)


@dataclass
class Dashboard:
    """A browser on one sandbox: the driver, the server's URL, and an HTTP client for the
    integrator's side (the requests the dashboard should show)."""

    driver: Any
    url: str
    http: httpx.Client
    app: SandboxApp
    seen_urls: list[str] = field(default_factory=list)
    # (path, status) of the refusals a test provokes on purpose: the browser logs each answer
    # of 4xx as a console error of source "network"; any other console error fails the test
    expected_refusals: set[tuple[str, int]] = field(default_factory=set)

    def expect_refusal(self, path: str, status: int) -> None:
        self.expected_refusals.add((self.url + path, status))

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)

    def wait(self, condition: Callable[[Any], Any], timeout: float = 10) -> Any:
        """Waits for a condition on the page (polled by WebDriverWait: no fixed sleep)."""
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
        )
        from selenium.webdriver.support.ui import WebDriverWait

        # a live update replaces parts of the page: an element found a moment ago may be gone
        return WebDriverWait(self.driver, timeout, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException)).until(condition)

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def live(self) -> None:
        """Waits until the session page's stream is open."""
        self.wait(lambda d: self.css("#live-status").text == "Live updates: on")

    def screenshot(self, name: str, *, whole_page: bool = False) -> None:
        """docs/<name>.png, when DASHBOARD_SCREENSHOTS=1 (how the README's pictures are made)."""
        if os.environ.get("DASHBOARD_SCREENSHOTS") != "1":
            return
        if whole_page:
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True})
            (DOCS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
        else:
            self.driver.save_screenshot(str(DOCS / f"{name}.png"))

    def console_errors(self) -> list[dict[str, Any]]:
        errors = []
        for entry in self.driver.get_log("browser"):
            if entry["level"] != "SEVERE":
                continue
            refused = _REFUSED.match(entry["message"])
            if (entry.get("source") == "network" and refused
                    and (refused["url"], int(refused["status"])) in self.expected_refusals):
                continue
            errors.append(entry)
        return errors

    def requested_urls(self) -> list[str]:
        """Every URL the browser asked for since the last call (Chrome's network log)."""
        for item in self.driver.get_log("performance"):
            message = json.loads(item["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.seen_urls.append(message["params"]["request"]["url"])
        return self.seen_urls


def _driver(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # an explicit driver and browser: Selenium Manager has nothing to look up or download
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def dashboard_for(live_server: Callable[[SandboxApp], LiveServer], tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Dashboard]]:
    """Starts a sandbox (settings as given) and a fresh headless Chromium on it. After the test:
    the console must hold no error, and every request the browser made must have gone to the
    sandbox's own loopback address."""
    _need_chromium()
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager, if ever asked, stays offline
    opened: list[Dashboard] = []

    def start(**settings: Any) -> Dashboard:
        app = create_app(Settings(seed=7, **settings), time_source=ManualTime())
        server = live_server(app)
        driver = _driver(tmp_path / f"profile-{len(opened)}")
        board = Dashboard(driver, server.url, httpx.Client(base_url=server.url, timeout=10), app)
        opened.append(board)
        return board

    yield start
    problems: list[str] = []
    for board in opened:
        try:
            errors = board.console_errors()
            # chrome://, data:, blob: and about: are the browser's own; anything on the network
            # must be the sandbox
            strangers = [u for u in board.requested_urls() if _NETWORK.match(u)
                         and not u.startswith(board.url + "/")]
            if errors:
                problems.append(f"console errors: {errors}")
            if strangers:
                problems.append(f"requests that left the sandbox: {strangers}")
        finally:
            board.driver.quit()
            board.http.close()
    assert not problems, "; ".join(problems)


@pytest.fixture
def dashboard(dashboard_for: Callable[..., Dashboard]) -> Dashboard:
    return dashboard_for()


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh headless Chromium for the shopper's pages (tests drive it with Selenium): the
    dashboard's browser, flags and offline driver."""
    _need_chromium()
    monkeypatch.setenv("SE_OFFLINE", "true")
    driver = _driver(tmp_path / "shopper-profile")
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
