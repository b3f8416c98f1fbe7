"""The web page end to end in a real headless Chromium (Debian's), driven by Playwright."""
from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("GENLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def page(server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium) "
                    "or set GENLAB_CHROMIUM")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(accept_downloads=True)
        page.goto(server.url + "/")
        yield page
        browser.close()


def test_page_streams_text_from_a_text_model(page):
    page.wait_for_selector("#model option[value=tiny]", state="attached")
    page.select_option("#model", "tiny")
    page.fill("#prompt", "the cat")
    page.fill("#max_tokens", "40")
    page.fill("#text-seed", "3")
    page.click("#generate")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=30000)
    text = page.inner_text("#output")
    assert text.startswith("the cat") and len(text) > len("the cat") + 10
    with page.expect_download() as download:
        page.click("#download")
    assert open(download.value.path(), encoding="utf-8").read() == text


def test_page_draws_the_chosen_class_and_reports_errors(page):
    page.select_option("#model", "faces")
    assert page.is_visible("#class") and not page.is_visible("#prompt")
    page.select_option("#class", "glasses")
    page.fill("#n", "3")
    page.click("#generate")
    page.wait_for_function("document.querySelectorAll('#images img').length === 3", timeout=30000)
    assert page.inner_text("#images figcaption >> nth=0") == "glasses"
    assert page.eval_on_selector("#images img", "img => img.naturalWidth") == 8
    page.fill("#n", "50")  # over the server's cap: the page shows the API's message
    page.click("#generate")
    page.wait_for_function("document.getElementById('status').className === 'error'", timeout=30000)
    assert "n must be <=" in page.inner_text("#status")
