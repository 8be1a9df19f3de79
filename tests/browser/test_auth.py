"""The UI over a server with API keys: it asks for a key, then shows everything, images included."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, expect

import runlane
from tests.browser.conftest import Watched, watch
from tests.servers import Server, running_server


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str]]:
    root = tmp_path_factory.mktemp("ui-auth")
    store = root / "store"
    run = runlane.init(project="secret/proj", name="guarded", dir=store, system_metrics_interval=None)
    assert isinstance(run, runlane.Run)
    run.log({"loss": 1.0})
    run.log_image("pic", np.full((8, 8, 3), 200, dtype=np.uint8), caption="guarded pic", step=0)
    run.finish()
    made = subprocess.run(
        [sys.executable, "-m", "runlane", "keys", "create", "ui", "--read-only", "--store", str(store)],
        capture_output=True,
        text=True,
        check=True,
    )
    key = made.stdout.strip().splitlines()[-1]
    with running_server(store, Path(root / "server.log")) as server:
        yield server, key, run.display_id


@pytest.fixture
def ui(browser: Browser, keyed: tuple[Server, str, str]) -> Iterator[Watched]:
    yield from watch(browser, keyed[0].url)


def test_the_ui_asks_for_a_key_and_then_shows_runs_and_images(ui: Watched, keyed: tuple[Server, str, str]) -> None:
    _, key, ref = keyed
    ui.expect_failure(r"/api/v1/")  # the 401s before the key is entered
    page = ui.open(f"/run/{ref}/images")
    form = page.locator('[data-section="api-key"]')
    expect(form).to_contain_text("This server needs an API key")
    ui.shot("api-key")
    page.fill('input[name="api-key"]', "not-the-key")
    page.get_by_role("button", name="Sign in").click()
    expect(form).to_contain_text("not valid")
    ui.allow.clear()  # from here on, nothing may fail
    page.fill('input[name="api-key"]', key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator('.image-card[data-key="pic"] [data-field="caption"]')).to_have_text("guarded pic")
    page.wait_for_function(
        "() => { const i = document.querySelector('.image-card img'); return i && i.naturalWidth === 8; }"
    )
    page.reload()  # the key is remembered by this browser
    expect(page.locator(".run-head")).to_contain_text("guarded")
    page.get_by_role("button", name="Sign out").click()
    ui.expect_failure(r"/api/v1/")
    expect(page.locator('[data-section="api-key"]')).to_be_visible()
