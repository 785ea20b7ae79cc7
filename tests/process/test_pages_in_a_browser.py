"""The pages in a real browser: Debian's Chromium, headless, driven by Playwright, against
`legation serve --demo`. No console error and no CSP violation, no serious or critical
axe-core finding, a live embed that redraws within a second of a report, and a
`known_at` one that never changes. Screenshots go to the test's folder.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from tests.conftest import make_key
from tests.servers import start, stop

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGES = {
    "front": "/",
    "embed": "/embed/relations/EU/RU?members=true",
    "embed-dark": "/embed/countries/RU?theme=dark",
    "embed-empty": "/embed/countries/FI",
    "chart": "/v1/relations/EU/RU/chart?members=true",
}
SERIOUS = {"serious", "critical"}


@pytest.fixture
async def demo(dsn: str) -> AsyncIterator[str]:
    base, process = await asyncio.to_thread(start, dsn, {"rate_limit": "0"}, None, None, True)
    try:
        yield base
    finally:
        await asyncio.to_thread(stop, process)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # Root in a container: Chromium's sandbox needs namespaces it may not have.
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


def watched(page: Page) -> list[str]:
    """Console errors (CSP violations are reported there) and uncaught page errors."""
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


async def serious_findings(page: Page) -> list[dict[str, Any]]:
    results = await Axe().run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return [v for v in violations if v.get("impact") in SERIOUS]


async def test_every_page_renders_cleanly_and_accessibly(
    demo: str, browser: Browser, tmp_path: Path
) -> None:
    for name, path in PAGES.items():
        page = await browser.new_page()
        problems = watched(page)
        answer = await page.goto(demo + path, wait_until="networkidle")
        assert answer is not None
        assert answer.status == 200, name
        # A bare SVG document has no scrolling page to measure: its viewport is the image.
        await page.screenshot(path=tmp_path / f"{name}.png", full_page=name != "chart")
        assert problems == [], f"{name}: {problems}"
        assert await serious_findings(page) == [], name
        await page.close()
    for name in PAGES:
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


async def test_the_pages_show_what_the_sources_say(demo: str, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(demo + PAGES["embed"])
    figures = await page.locator(".figure").all_inner_texts()
    assert figures[1] == (
        "Russian Federation has expelled 54 diplomats of the EU side "
        "(45 to 54: Belgium's count is disputed)."
    )
    assert await page.locator("figure svg").count() == 1
    front = await browser.new_page()
    await front.goto(demo + "/")
    await front.fill("#q", "Netherlands")
    await front.click("button[type=submit]")
    await front.wait_for_url("**/embed/countries/NL")
    assert "Netherlands" in await front.locator("h1").inner_text()


async def test_a_live_embed_redraws_within_a_second_and_a_known_at_one_never_does(
    demo: str, dsn: str, browser: Browser
) -> None:
    key = await make_key(dsn, ("write",))
    events = await asyncio.to_thread(httpx.get, f"{demo}/v1/events", timeout=10)
    head = events.json()["last_position"]
    live, then = await browser.new_page(), await browser.new_page()
    problems = watched(live)
    async with live.expect_response(lambda answer: "/v1/events/stream" in answer.url):
        await live.goto(f"{demo}/embed/relations/RU/NL")
    await then.goto(f"{demo}/embed/relations/RU/NL?known_at={head}")
    before = await then.locator("#content").inner_html()
    figure = live.locator(".figure").first
    assert (
        await figure.inner_text() == "Russian Federation has expelled 15 diplomats of Netherlands."
    )
    report = {
        "kind": "expulsion", "occurred_on": "2022-04-20", "expelling": "RU", "expelled": "NL",
        "count": 7, "sources": [{"outlet": "Test Wire"}],
    }  # fmt: skip
    posted = await asyncio.to_thread(
        httpx.post,
        f"{demo}/v1/incidents",
        json=report,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert posted.status_code == 201, posted.text
    sent = time.monotonic()
    # Polled from here: a predicate evaluated in the page is an eval the page's CSP refuses.
    while "has expelled 22 " not in await live.locator(".figure").first.inner_text():
        assert time.monotonic() - sent < 1.0, "the live page did not redraw within a second"
        await asyncio.sleep(0.02)
    assert problems == []
    await asyncio.sleep(1.5)
    assert await then.locator("#content").inner_html() == before
    assert "This page never changes." in before
