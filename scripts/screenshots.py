"""Regenerate the README's screenshots in docs/: a fresh database with demo data, a real server, headless Chromium.

.venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import PASSWORD, database, kehu, server  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


ANALYSIS_VIEWS = ("channels", "value", "conversion")


async def shoot(url: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=os.environ.get("KEHU_CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS
        )
        # Charts drawn at once: a full-page shot resizes the page, which would catch an animation half-way.
        page = await browser.new_page(locale="zh-CN", viewport={"width": 1360, "height": 900}, reduced_motion="reduce")
        await page.goto(f"{url}/login")
        await page.fill("input[name=username]", "zhuguan")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{url}/customers")
        docs = ROOT / "docs"
        docs.mkdir(exist_ok=True)
        await page.screenshot(path=str(docs / "customer-list.png"))
        html = await page.goto(f"{url}/customers?kind=member&sort=last_contact")
        assert html is not None
        # A member with projects, contacts and follow-ups shows every part of the customer page.
        for customer_id in re.findall(r'href="/customers/(\d+)"', await html.text()):
            await page.goto(f"{url}/customers/{customer_id}")
            if await page.locator("#projects tbody tr").count() and await page.locator("#contacts tbody tr").count():
                break
        await page.click("#field-title .field-display")
        await page.wait_for_selector("#field-title input[name=value]")
        await page.screenshot(path=str(docs / "customer-page.png"), full_page=True)
        for view in ANALYSIS_VIEWS:
            await page.goto(f"{url}/analysis/{view}")
            await page.wait_for_load_state("networkidle")
            await page.wait_for_selector("canvas[data-chart][width]")
            await page.screenshot(path=str(docs / f"analysis-{view}.png"), full_page=True)
        await browser.close()


def main() -> None:
    with database("sqlite") as env:
        kehu("migrate", env=env)
        kehu("createuser", "zhuguan", "--role", "supervisor", "--name", "周主管", env=env)
        kehu("demo", "--customers", "300", "--seed", "11", env=env)
        with server(env) as url:
            asyncio.run(shoot(url))
    shots = ["customer-list", "customer-page", *(f"analysis-{view}" for view in ANALYSIS_VIEWS)]
    print("wrote " + ", ".join(f"docs/{name}.png" for name in shots))


if __name__ == "__main__":
    main()
