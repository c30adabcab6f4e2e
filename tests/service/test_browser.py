"""The web page in a real browser (Playwright + Debian's Chromium, headless), against the service
served by `search-cli serve` and a real Celery worker: start a search from the form, watch it
finish, see the front plotted, open a candidate and download it. Screenshots go to build/screenshots/
(ignored by git); DEVICEFIT_SCREENSHOTS=docs/screenshots regenerates the documentation's on purpose."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from tests.service.conftest import REPO

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO / os.environ.get("DEVICEFIT_SCREENSHOTS", "build/screenshots")


@pytest.fixture(scope="module")
def page():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test-env.sh (it installs Debian's chromium)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def test_start_a_search_from_the_form_watch_it_and_download_a_candidate(served, page, tmp_path):
    from playwright.sync_api import expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    external = []
    page.on("request", lambda r: None if r.url.startswith(served) else external.append(r.url))

    response = page.goto(served + "/new")
    assert response is not None and response.ok, (response and response.status, page.content()[:2000])
    page.fill("#model", "demo:minilm")
    page.select_option("#device", "rpi5")
    page.fill("#max_latency", "200ms")
    page.fill("#trials", "6")
    page.fill("#calib_samples", "2")
    page.fill("#seq_len", "32")
    page.screenshot(path=str(SHOTS / "new-search.png"), full_page=True)
    page.click("#submit")
    page.wait_for_url("**/searches/*", timeout=30_000)
    search_id = page.url.rstrip("/").split("/")[-1]

    # locator waits, not wait_for_function: the pages' CSP (no eval) holds in this browser too
    expect(page.locator("#status")).to_have_text("running", timeout=120_000)
    expect(page.locator("#status")).to_have_text("done", timeout=300_000)
    points = page.locator("#front-plot circle.point")
    points.nth(2).wait_for(timeout=10_000)
    assert points.count() >= 3
    assert page.locator("#front-plot line.budget").count() == 1  # the 200 ms budget line
    assert page.locator("#progress-text").inner_text().startswith("6 / 6")

    page.wait_for_timeout(600)  # the progress bar's CSS transition reaches 100%
    points.last.hover()  # drawn last, so on top of any point it overlaps
    tooltip = page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    assert "ms" in tooltip.inner_text() and "#" in tooltip.inner_text()
    page.screenshot(path=str(SHOTS / "search-front.png"), full_page=True)

    # the table sorts by latency when its header is clicked
    page.click("#front-table th[data-key=latency_ms]")
    latencies = [float(t) for t in page.locator("#front-table tbody tr td:nth-child(4)").all_inner_texts()]
    assert latencies == sorted(latencies)

    page.click("#front-table tbody tr:first-child a")
    page.wait_for_url(f"**/searches/{search_id}/candidates/*")
    k = page.url.rstrip("/").split("/")[-1]
    detail = page.request.get(f"{served}/search/{search_id}/candidates/{k}").json()
    kept_blocks = 6 - len(detail["dropped_blocks"])  # the fastest candidate may drop blocks
    assert kept_blocks >= 1
    assert page.locator("#heatmap .cell[data-layer]").count() == 6 * kept_blocks  # MiniLM: 6 linear layers a block
    assert page.locator("#latency-bars .bar-row").count() >= 2
    page.select_option("#heat-key", "latency_ms")
    page.screenshot(path=str(SHOTS / "candidate.png"), full_page=True)

    page.select_option("#download-format", "devicefit")  # the format choice (default: the device's runtime's)
    assert page.locator("#download").get_attribute("href").endswith("?format=devicefit")
    with page.expect_download(timeout=240_000) as info:
        page.click("#download")
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    assert target.name.endswith(".tar.gz")
    with tarfile.open(target) as tar:
        names = tar.getnames()
    assert any(n.endswith("recipe.json") for n in names) and any(n.endswith(".safetensors") for n in names)

    page.goto(served + "/")
    assert page.locator(f'[data-status-of="{search_id}"]').inner_text() == "done"
    page.screenshot(path=str(SHOTS / "searches.png"), full_page=True)
    assert external == []  # no CDN: every script and style came from the app


def test_swagger_ui_works_offline_under_the_csp(served, page):
    from playwright.sync_api import expect

    external, errors = [], []
    page.on("request", lambda r: None if r.url.startswith(served) else external.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    assert page.goto(served + "/docs").ok
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("devicefit", timeout=30_000)
    page.locator(".opblock").first.wait_for(timeout=10_000)
    assert page.locator(".opblock").count() >= 8  # every operation of the schema is listed
    assert external == [] and not [e for e in errors if "Content Security Policy" in e], errors


@pytest.fixture(scope="module")
def served_with_models(celery_worker, tmp_path_factory):
    """`search-cli serve` like `served`, with a model root holding a tiny random Llama (a causal LM that
    builds in seconds): (url, the model's path)."""
    import json
    import subprocess
    import sys
    import urllib.request

    from tests.conftest import tiny_config
    from tests.support.services import ServiceUnavailable, free_port, stop_process, wait_until

    tmp = tmp_path_factory.mktemp("serve-models")
    (tmp / "models").mkdir()
    model = tmp / "models" / "tiny-llama.json"
    model.write_text(json.dumps(tiny_config("llama", vocab_size=256)))  # byte vocabulary: every id is text
    url = f"http://127.0.0.1:{free_port()}"
    env = dict(os.environ, DEVICEFIT_ARTIFACT_DIR=str(tmp / "artifacts"), PYTHONPATH=str(REPO))
    env.pop("DEVICEFIT_API_TOKEN", None)
    with open(tmp / "serve.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "search.cli.main", "serve", "--port", url.rsplit(":", 1)[1],
                                 "--database-url", f"sqlite:///{tmp / 'jobs.db'}", "--broker", celery_worker["broker"],
                                 "--model-root", str(tmp / "models"), "--log-level", "warning"],
                                cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)

        def answers() -> bool:
            try:
                return urllib.request.urlopen(url + "/healthz", timeout=2).status == 200
            except OSError:
                return False

        try:
            wait_until(answers, 60, "search-cli serve", proc, tmp / "serve.log")
            yield url, str(model)
        except ServiceUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        finally:
            stop_process(proc)


def test_try_a_causal_candidate_type_a_prompt_and_read_its_text(served_with_models, page):
    import json
    import time
    import urllib.error
    import urllib.request

    from playwright.sync_api import expect

    served, model = served_with_models
    SHOTS.mkdir(parents=True, exist_ok=True)
    spec = {"model": model, "device": "rpi5", "workload": "prefill:32", "budget": {"max_latency": "10s"},
            "trials": 3, "calib_samples": 2, "seq_len": 32}
    request = urllib.request.Request(served + "/search", json.dumps(spec).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    search_id = json.load(urllib.request.urlopen(request))["id"]
    deadline = time.monotonic() + 240
    while (detail := json.load(urllib.request.urlopen(f"{served}/search/{search_id}")))["status"] != "done":
        assert detail["status"] in ("queued", "running") and time.monotonic() < deadline, detail
        time.sleep(1)

    external, errors = [], []
    page.on("request", lambda r: None if r.url.startswith(served) else external.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    assert page.goto(f"{served}/searches/{search_id}/candidates/0").ok
    page.fill("#try-prompt", "The quick brown fox")
    page.fill("#try-tokens", "16")
    page.click("#try-submit")
    expect(page.locator("#try-output")).to_be_visible(timeout=120_000)
    expect(page.locator("#try-status")).to_contain_text("16 new tokens")
    assert page.locator("#try-echo").text_content() == "The quick brown fox"
    shown = page.locator("#try-text").text_content()
    page.screenshot(path=str(SHOTS / "candidate-try-it.png"), full_page=True)

    # the text on the page is the worker's answer (the same greedy continuation the API gives)
    trial = detail["front"][0]["trial"]
    request = urllib.request.Request(f"{served}/search/{search_id}/trials/{trial}/generate", method="POST",
                                     data=json.dumps({"prompt": "The quick brown fox", "max_new_tokens": 16}).encode(),
                                     headers={"Content-Type": "application/json"})
    poll = served + json.load(urllib.request.urlopen(request))["links"]["self"]
    while (answer := urllib.request.urlopen(poll)).status == 202:
        time.sleep(0.2)
    assert shown and shown == json.load(answer)["text"]

    # a prompt the model cannot take: the worker's reason, readable on the page
    page.fill("#try-prompt", "x" * 250)
    page.fill("#try-tokens", "32")
    page.click("#try-submit")
    expect(page.locator("#try-error")).to_contain_text("positions", timeout=60_000)
    assert external == [] and not [e for e in errors if "Content Security Policy" in e], (external, errors)
