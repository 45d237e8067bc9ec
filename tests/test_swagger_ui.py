"""Swagger UI in a real browser: Debian's Chromium, driven by Playwright, against the live server."""

import json
import uuid
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests import api
from tests.live import CHROMIUM, CHROMIUM_MISSING, launch_chromium


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium; a missing browser fails the test rather than skipping it."""
    assert CHROMIUM.is_file(), CHROMIUM_MISSING
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser):
    """A fresh browser page that records every URL it requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.requested_urls = []
    page.on("request", lambda request: page.requested_urls.append(request.url))
    yield page
    context.close()


def open_operation(page: Page, operation_id: str, tag: str):
    """Expand one operation in Swagger UI and return its block."""
    block = page.locator(f"#operations-{tag}-{operation_id}")
    block.locator(".opblock-summary").first.click()
    return block


def authorize(page: Page, key: str) -> None:
    """Enter an API key in Swagger UI's Authorize dialog, as a user does before trying an operation."""
    page.locator(".auth-wrapper .authorize").click()
    dialog = page.locator(".modal-ux")
    dialog.locator("input[type=text], input[type=password]").first.fill(key)
    dialog.locator("button.modal-btn.authorize").click()
    expect(dialog.locator("button.modal-btn", has_text="Logout")).to_be_visible()
    dialog.locator("button.btn-done").click()


def test_apidocs_shows_every_resource_from_the_app_itself(page, live_server):
    page.goto(f"{live_server.url}/apidocs")
    expect(page.locator(".opblock-tag-section")).to_have_count(5)
    expect(page.locator(".opblock")).to_have_count(27)
    assert page.url == f"{live_server.url}/apidocs/"
    own_host = urlsplit(live_server.url).netloc
    assert {urlsplit(url).netloc for url in page.requested_urls if url.startswith("http")} == {own_host}


def test_creating_a_user_from_swagger_ui_answers_201_with_the_new_user(page, live_server):
    email = f"swagger-{uuid.uuid4().hex[:12]}@example.com"
    page.goto(f"{live_server.url}/apidocs")
    authorize(page, api.suite_key())
    block = open_operation(page, "create_user", "users")
    block.get_by_role("button", name="Try it out").click()
    body = block.locator("textarea.body-param__text")
    body.fill(json.dumps({"name": "Swagger User", "email": email, "phone": "1234567890", "country": "India"}))
    block.get_by_role("button", name="Execute").click()

    response = block.locator(".live-responses-table .response").first
    expect(response.locator(".response-col_status")).to_have_text("201", timeout=15000)
    answer = json.loads(response.locator(".response-col_description pre.microlight").first.inner_text())
    assert answer["email"] == email
    assert answer["name"] == "Swagger User"
    assert isinstance(answer["id"], int)
    expect(response.locator(".response-col_description")).to_contain_text(f"/users/{answer['id']}")


def test_trying_an_operation_without_authorizing_answers_401_with_a_problem(page, live_server):
    page.goto(f"{live_server.url}/apidocs")
    block = open_operation(page, "list_users", "users")
    block.get_by_role("button", name="Try it out").click()
    block.get_by_role("button", name="Execute").click()

    response = block.locator(".live-responses-table .response").first
    expect(response.locator(".response-col_status")).to_have_text("401", timeout=15000)
    expect(response.locator(".response-col_description")).to_contain_text("Unauthorized")
