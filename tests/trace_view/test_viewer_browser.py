"""The trace viewer in a real browser: headless Chromium driven by Selenium. Skipped, with
the reason, where Chromium, its driver or selenium is missing (CI installs them: .ci/run).
"""

from __future__ import annotations

import shutil

import pytest
from trace_fixtures import PROGRAM, failing_trace

from sglc.trace_view import write_html

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install -e '.[dev]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="headless Chromium is not installed (apt-get install chromium chromium-driver)",
)
SOURCES = {"viewer_demo.sgl": PROGRAM}


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    yield driver
    driver.quit()


def open_page(browser, trace: dict, path) -> None:
    write_html(trace, path, sources=SOURCES)
    browser.get(path.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def rows(browser):
    return browser.find_elements(By.CSS_SELECTOR, ".call-row")


def test_expand_a_call_filter_and_screenshot(browser, traced_run, tmp_path):
    _, trace = traced_run
    open_page(browser, trace, tmp_path / "t.html")
    stat = browser.find_element(By.CSS_SELECTOR, '.stat[data-stat="calls"] b')
    assert stat.text == str(len(trace["calls"]))
    assert len(rows(browser)) == len(trace["calls"])
    frames = [f.text for f in browser.find_elements(By.CSS_SELECTOR, ".frame-label")]
    assert "main (parallel for item 2 of 2)" in frames and "code" in frames

    (code,) = [c for c in trace["calls"] if c.get("name") == "c"]
    browser.find_element(By.CSS_SELECTOR, f'.call-row[data-id="{code["id"]}"]').click()
    details = browser.find_element(By.CSS_SELECTOR, f'.call-details[data-id="{code["id"]}"]')
    assert "Code:" in details.find_element(By.CSS_SELECTOR, ".prompt").text
    output = details.find_element(By.CSS_SELECTOR, ".output")
    assert output.text.strip() == code["output"].strip()
    forced = [m.text for m in output.find_elements(By.CSS_SELECTOR, ".forced")]
    assert forced and all(set(m) <= set(" ID-OK") for m in forced)
    assert "/ID-[0-9]{2}-OK/" in details.text and "viewer_demo.sgl:7" in details.text

    branch = next(c for c in trace["calls"] if c.get("name") == "t")
    browser.find_element(By.CSS_SELECTOR, f'.call-row[data-id="{branch["id"]}"]').click()
    cached = browser.find_element(
        By.CSS_SELECTOR, f'.call-details[data-id="{branch["id"]}"] .prompt .cached')
    assert cached.text.startswith("Once upon a time")

    path = tmp_path / "viewer.png"
    assert browser.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    Select(browser.find_element(By.ID, "fn-filter")).select_by_value("code")
    assert [r.get_attribute("data-fn") for r in rows(browser)] == ["code"]
    Select(browser.find_element(By.ID, "fn-filter")).select_by_value("")
    search = browser.find_element(By.ID, "search")
    search.send_keys("Say red")
    assert [r.get_attribute("data-fn") for r in rows(browser)] == ["item"]
    search.clear()
    search.send_keys("no such text anywhere")
    assert rows(browser) == [] and "No call matches" in browser.find_element(By.ID, "tree").text
    search.clear()
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("ok")
    assert len(rows(browser)) == len(trace["calls"])


def test_a_failed_run_shows_its_error_and_sgl_line(browser, trace_runtime, tmp_path):
    trace = failing_trace(trace_runtime)
    open_page(browser, trace, tmp_path / "failed.html")
    box = browser.find_element(By.ID, "run-error").text
    assert "viewer_demo.sgl:21:18: gen 'n'" in box
    assert 'gen n: /[0-9]{40}/(max_tokens=3)' in box  # the SGL line it points at
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("error")
    assert [r.get_attribute("data-status") for r in rows(browser)] == ["error"]
    stat = browser.find_element(By.CSS_SELECTOR, '.stat[data-stat="errors"] b')
    assert stat.text == "2"  # the failed gen and the run


def test_an_older_trace_without_the_newer_fields_still_shows(browser, tmp_path):
    old = {"version": 1, "num_calls": 1, "num_prompt_tokens": 10, "num_cached_tokens": 5,
           "num_completion_tokens": 2, "calls": [
               {"id": 0, "kind": "gen", "fn": "main", "name": "x", "location": "a.sgl:1:5",
                "prompt": "0123456789", "prompt_tokens": 10, "cached_tokens": 5,
                "output": "hi", "finish_reason": "stop", "completion_tokens": 2,
                "start_s": 0.0, "end_s": 0.5, "latency_s": 0.5,
                "checks": [{"name": "ensures x != ''", "passed": True}]}]}
    open_page(browser, old, tmp_path / "old.html")
    rate = browser.find_element(By.CSS_SELECTOR, '.stat[data-stat="cache hit rate"] b')
    assert rate.text == "50.0%"
    rows(browser)[0].click()
    details = browser.find_element(By.CSS_SELECTOR, ".call-details")
    assert details.find_element(By.CSS_SELECTOR, ".output").text == "hi"
    assert details.find_element(By.CSS_SELECTOR, ".prompt .cached").text == "01234"
    check = details.find_element(By.CSS_SELECTOR, ".checks li")
    assert check.text.startswith("ensures x != ''") and "check-pass" in check.get_attribute(
        "class")
