"""The UI in a real browser: Debian's Chromium, driven by Playwright's Python package (its own browser downloads
cannot reach this network, so it is pointed at the system's). Skips with the reason where either is missing.

One walk through every page, as a first-time user would take it: upload a CSV, read the data checks, train a tiny
model while the curve grows, stop it (a checkpoint), resume it to the end, open the report, predict a sentence,
serve the model, switch to Chinese, delete the run. All the while, every request the browser makes is recorded:
none may leave 127.0.0.1. LMTUNE_SCREENSHOTS=FOLDER keeps a screenshot of each page.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import uvicorn

from lmtune.ui import create_ui

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium's own background traffic (updates, sync, safe browsing) would reach for Google's hosts; a container's
# small /dev/shm crashes its renderer, and CI runs as root, where the sandbox refuses to start.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
STEPS = 300  # enough to stop mid-run: a tiny model makes 10 steps before a click can land
ROWS = "".join(f"the film was {'good' if i % 2 else 'bad'} {i},{'pos' if i % 2 else 'neg'}\n" for i in range(60))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ui(tmp_path):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_ui(tmp_path / "runs", data_root=tmp_path / "data"),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=60)


@pytest.fixture
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency: pip install "
                                   "-e '.[test]'")
    with sync_api.sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield found
        found.close()


def test_a_first_hour_in_the_browser(ui, browser, tiny_bert, tmp_path):
    shots = Path(os.environ["LMTUNE_SCREENSHOTS"]) if os.environ.get("LMTUNE_SCREENSHOTS") else None
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    requests, errors = [], []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))

    def shot(name: str) -> None:
        if shots:
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    page.goto(ui)
    page.wait_for_selector("#file-select option", state="attached")

    # Data: upload, the detected columns, the checks.
    upload = tmp_path / "reviews.csv"
    upload.write_text("review,sentiment\n" + ROWS + "the film was good 1,pos\nthe food was awful,neg\n"
                      "the food was awful,pos\n", encoding="utf-8")
    page.set_input_files("#upload", str(upload))
    page.wait_for_function("document.querySelector('#file-select').selectedOptions[0].textContent"
                           " === 'upload: reviews.csv'")
    page.wait_for_selector("#preview-table table")
    assert "review" in page.inner_text("#col-text option") and "sentiment" in page.inner_text("#col-label option")
    page.click("#check-button")
    page.wait_for_selector(".check-card[data-check='check.lengths']", timeout=60_000)
    conflicts = page.inner_text(".check-card[data-check='check.conflicts']")
    assert "1" in conflicts
    assert page.locator(".check-card[data-check='check.classes']").count() >= 1
    assert page.locator("#length-chart rect").count() > 0
    shot("1-data")

    # Train: the form, the command it stands for, a run with a growing curve, stop and resume.
    page.click("#tab-train")
    page.fill("#model-input", tiny_bert)
    page.dispatch_event("#model-input", "change")
    page.click("details[data-section='data'] summary")
    for key, value in (("train.max_steps", STEPS), ("train.log_every", 5), ("train.eval_every", 100),
                       ("train.batch_size", 8), ("data.max_length", 16)):
        field = f"#config-form input[data-key='{key}']"
        page.fill(field, str(value))
        page.dispatch_event(field, "change")
    page.wait_for_function(f"document.querySelector('#command').textContent.includes('--max-steps {STEPS}')")
    assert "max_steps: 300" in page.inner_text("#yaml")
    page.click("#start-button")
    page.wait_for_function("document.querySelectorAll('#curve circle.loss').length >= 2", timeout=120_000)
    points = page.locator("#curve circle.loss").count()
    page.wait_for_function(f"document.querySelectorAll('#curve circle.loss').length > {points}", timeout=60_000)
    shot("2-train-running")
    page.click(".job .stop")
    page.wait_for_selector(".job[data-state='stopped']", timeout=60_000)
    stopped_at = int(page.inner_text(".job .hint").split()[1])
    assert 0 < stopped_at < STEPS
    page.click(".job .resume")
    page.wait_for_selector(".job[data-state='finished']", timeout=180_000)
    assert f"{STEPS} / {STEPS}" in page.inner_text(".job[data-state='finished'] .hint")
    assert f"{stopped_at} / {STEPS}" in page.inner_text(".job[data-state='stopped'] .hint")
    # The resumed run continued the same log: the points from before the stop are still on the curve.
    assert page.locator("#curve circle.loss").count() == STEPS // 5
    shot("3-train-finished")

    # Runs: the comparison, the report.
    page.click("#tab-runs")
    page.wait_for_selector(".run-row[data-name='run']")
    assert "ranked by" in page.inner_text("#compare-tables")
    shot("4-runs")
    with page.expect_popup() as popup:
        page.click(".run-row[data-name='run'] .report-link")
    report = popup.value
    report.wait_for_load_state()
    assert report.title() == "lmtune run report: run"
    report.close()

    # Try: a prediction with its attributions.
    page.click("#tab-try")
    page.fill("#try-text", "the film was good")
    page.click("#predict-button")
    page.wait_for_selector(".predicted-label", timeout=120_000)  # loads the model first
    assert page.inner_text(".predicted-label") in ("pos", "neg")
    assert page.locator("#attribution .token").count() > 0
    shot("5-try")

    # Deploy: serve the run, with the curl line to call it.
    page.click("#tab-deploy")
    page.fill("#serve-port", str(free_port()))
    page.click("#serve-button")
    page.wait_for_selector(".server[data-state='ready']", timeout=60_000)
    assert "curl -s 127.0.0.1:" in page.inner_text(".server .curl")
    shot("6-deploy")
    page.click("#unserve-button")

    # Chinese: every label switches.
    page.click("#lang")
    page.click("#tab-data")
    assert page.inner_text("#tab-data") == "数据" and page.inner_text("#check-button") == "检查数据"
    assert "类别分布" in page.inner_text("#checks")
    shot("7-data-zh")

    # Runs again: delete the run, after saying yes to the question.
    page.click("#tab-runs")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(".run-row[data-name='run'] .delete")
    page.wait_for_selector(".run-row[data-name='run']", state="detached")
    assert not (tmp_path / "runs" / "run").exists()

    assert not errors, errors
    outside = [u for u in requests
               if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname != "127.0.0.1"]
    assert not outside, f"the browser reached beyond this machine: {outside}"
    assert len(requests) > 20
