"""A real Chromium imports a spreadsheet through a real Kehu server and its worker: upload, check the guessed
columns, import, watch it finish, undo it and watch the undo finish."""

from __future__ import annotations

import pytest

from tests.test_browser import PASSWORD, chromium, page, server  # noqa: F401 - the fixtures of the browser test
from tests.test_imports import FIXTURES

pytestmark = pytest.mark.browser


async def test_staff_imports_a_spreadsheet_and_undoes_it(page, server: str) -> None:  # noqa: F811
    from playwright.async_api import expect

    await page.goto(f"{server}/login")
    await page.fill("input[name=username]", "wangfang")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{server}/customers")

    await page.click("a[href='/imports']")
    await page.wait_for_url(f"{server}/imports")
    await page.set_input_files("#import-file", str(FIXTURES / "customers-gbk.csv"))
    await page.click("form[action='/imports'] button[type=submit]")
    await page.wait_for_url(f"{server}/imports/*")
    # The preview shows the file's rows, read from GBK, and the columns as guessed from the headers.
    await expect(page.locator("#import-preview")).to_contain_text("昆明华信勘测设计有限公司")
    await expect(page.locator("#column-2")).to_have_value("mobile")
    await page.select_option("#import-owner", "pool")
    await page.click("#start-import")

    # The worker imports it; the page polls and shows the result when it is done.
    await expect(page.locator("#undo-import")).to_be_visible(timeout=60_000)
    await expect(page.locator("#import-issues")).to_contain_text("12345")
    await page.goto(f"{server}/customers")
    await expect(page.locator("#customer-results")).to_contain_text("曲靖宏达矿业集团")

    await page.go_back()
    page.once("dialog", lambda dialog: dialog.accept())
    await page.click("#undo-import")
    # The worker takes it back while the page shows its progress, then the page says it is undone.
    await expect(page.locator("#undo-import")).to_have_count(0)
    await expect(page.locator("section.card h2").first).to_contain_text("已撤销", timeout=60_000)
    await page.goto(f"{server}/customers")
    await expect(page.locator("#customer-results")).not_to_contain_text("曲靖宏达矿业集团")
