"""Make the screenshots in screenshots/ with headless Chromium against a live server.

One command (`make screenshots` runs it after installing what it needs):

    .venv/bin/python scripts/screenshots.py

It creates a throwaway database with fresh keys on the configured MySQL/MariaDB server, serves
the app with its production server on a free port, makes an API key, adds sample data through the API, and writes:

- screenshots/swagger-authorize.png: Swagger UI's Authorize dialog with an API key entered;
- screenshots/swagger-ui.png: Swagger UI at /apidocs with `POST /users` expanded;
- screenshots/payment-response.png: `GET /payments/{payment_id}` executed in Swagger UI, its card masked;
- screenshots/create-user-postman.png: the Postman collection's create-user request and its
  response, from newman's JSON report of a run against the same server.

The server is stopped and the database dropped at the end, whatever happens.
"""

import json
import secrets
import subprocess
import sys
import tempfile
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jinja2  # noqa: E402
import mysql.connector  # noqa: E402
from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402

from config import TestConfig  # noqa: E402
from db import connection_settings, init_db  # noqa: E402
from services import api_keys  # noqa: E402
from tests.conftest import make_api_key  # noqa: E402
from tests.live import CHROMIUM, CHROMIUM_MISSING, launch_chromium, start_server, stop_server  # noqa: E402

OUTPUT = ROOT / "screenshots"
TEMPLATES = ROOT / "templates" / "screenshots"
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
COLLECTION = ROOT / "postman" / "payments-api.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "local.postman_environment.json"
CREATE_USER_REQUEST = "Create a user (the seed's sample)"
KEY_NAMES = ("CARD_NUMBER_KEYS", "CARD_CVC_KEYS", "CARD_FINGERPRINT_KEY", "JWT_SIGNING_KEYS", "WEBHOOK_SECRET_KEYS")
DB_NAMES = ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME")


class ScreenshotConfig(TestConfig):
    """The configured server, a database of this run's own, and fresh throwaway keys."""

    DB_NAME = f"payments_screenshots_{secrets.token_hex(4)}"


def settings_of(config_class: type) -> dict:
    """Return a config class's settings as a dict."""
    return {name: getattr(config_class, name) for name in dir(config_class) if name.isupper()}


def check_tools() -> None:
    """Stop with a clear message when Chromium, newman or the Postman collection is missing."""
    if not CHROMIUM.is_file():
        sys.exit(f"screenshots: {CHROMIUM_MISSING}")
    if not NEWMAN.is_file():
        sys.exit(f"screenshots: {NEWMAN.relative_to(ROOT)} is missing; run scripts/install_newman.sh first.")
    if not (COLLECTION.is_file() and ENVIRONMENT.is_file()):
        sys.exit("screenshots: the Postman collection or environment in postman/ is missing.")


@contextmanager
def throwaway_database(settings: dict):
    """Create this run's database and apply the schema; drop it at the end."""
    cnx = mysql.connector.connect(**connection_settings(settings, with_database=False))
    try:
        cursor = cnx.cursor()
        cursor.execute("SHOW DATABASES LIKE %s", (settings["DB_NAME"],))
        if cursor.fetchall():
            sys.exit(f"screenshots: database {settings['DB_NAME']} already exists; not touching it.")
        init_db(settings)
        try:
            yield settings
        finally:
            cursor.execute(f"DROP DATABASE IF EXISTS `{settings['DB_NAME']}`")
    finally:
        cnx.close()


def post(url: str, key: str, body: dict) -> dict:
    """POST a JSON body with an API key and return the JSON answer."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def add_sample_data(url: str, key: str) -> dict:
    """Create the README's sample user and payments; return the card payment."""
    john = post(
        f"{url}/users",
        key,
        {"name": "John Doe", "email": "john@example.com", "phone": "1234567890", "country": "India"},
    )
    post(f"{url}/users", key, {"name": "Asha Rao", "email": "asha.rao@example.com", "country": "India"})
    payment = post(
        f"{url}/payments",
        key,
        {
            "user_id": john["id"],
            "amount": 500.0,
            "payment_method": "Credit Card",
            "card_no": "4111111111111111",
            "card_expiry": "2099-12-01",
            "card_cvc": "123",
            "status": "completed",
            "currency": "INR",
            "description": "Payment for services",
        },
    )
    post(f"{url}/payments", key, {"user_id": john["id"], "amount": "1500", "currency": "JPY", "payment_method": "UPI"})
    return payment


def open_swagger_ui(browser: Browser, url: str, height: int, key: str) -> Page:
    """Open Swagger UI in a fresh page, authorize it with an API key, and wait for the operations."""
    page = browser.new_page(viewport={"width": 1280, "height": height})
    page.goto(f"{url}/apidocs")
    page.locator("#operations-users-create_user").wait_for()
    dialog = open_authorize_dialog(page, key)
    dialog.locator("button.modal-btn.authorize").click()
    dialog.locator("button.btn-done").click()
    return page


def open_authorize_dialog(page: Page, key: str):
    """Open Swagger UI's Authorize dialog and type the key in; return the dialog."""
    page.locator(".auth-wrapper .authorize").click()
    dialog = page.locator(".modal-ux")
    dialog.locator("input").first.fill(key)
    return dialog


def shoot_authorize(browser: Browser, url: str, key: str) -> None:
    """Swagger UI's Authorize dialog with the key entered, before it is applied."""
    page = browser.new_page(viewport={"width": 1280, "height": 700})
    page.goto(f"{url}/apidocs")
    page.locator("#operations-users-create_user").wait_for()
    open_authorize_dialog(page, key)
    page.screenshot(path=OUTPUT / "swagger-authorize.png")
    page.close()


def shoot_swagger_ui(browser: Browser, url: str, key: str) -> None:
    """Swagger UI with `POST /users` expanded."""
    page = open_swagger_ui(browser, url, 1500, key)
    block = page.locator("#operations-users-create_user")
    block.locator(".opblock-summary").first.click()
    block.locator(".opblock-body .body-param__example, .opblock-body .highlight-code").first.wait_for()
    page.screenshot(path=OUTPUT / "swagger-ui.png")
    page.close()


def shoot_payment_response(browser: Browser, url: str, key: str, payment: dict) -> None:
    """`GET /payments/{payment_id}` tried out in Swagger UI: the answer with its card masked."""
    page = open_swagger_ui(browser, url, 1100, key)
    block = page.locator("#operations-payments-get_payment")
    block.locator(".opblock-summary").first.click()
    block.get_by_role("button", name="Try it out").click()
    block.locator("input[placeholder='payment_id']").fill(str(payment["id"]))
    block.get_by_role("button", name="Execute").click()
    live = block.locator(".live-responses-table")
    live.locator(".response-col_status", has_text="200").wait_for()
    if "XXXX-XXXX-XXXX-1111" not in live.inner_text():
        sys.exit("screenshots: the payment response does not show the masked card number")
    top = block.bounding_box()
    bottom = live.bounding_box()
    page.set_viewport_size({"width": 1280, "height": int(bottom["y"] + bottom["height"] + 40)})
    top, bottom = block.bounding_box(), live.bounding_box()
    clip = {"x": top["x"] - 10, "y": top["y"] - 10, "width": top["width"] + 20}
    clip["height"] = bottom["y"] + bottom["height"] - clip["y"] + 4
    page.screenshot(path=OUTPUT / "payment-response.png", clip=clip)
    page.close()


def run_newman(url: str, key: str, report: Path) -> dict:
    """Run the Postman collection against the server; return the create-user execution."""
    command = [str(NEWMAN), "run", str(COLLECTION), "-e", str(ENVIRONMENT), "--env-var", f"baseUrl={url}"]
    command += ["--env-var", f"apiKey={key}"]
    command += ["--color", "off", "--reporters", "cli,json", "--reporter-json-export", str(report)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        sys.exit(f"screenshots: newman failed:\n{result.stdout}\n{result.stderr}")
    executions = json.loads(report.read_text())["run"]["executions"]
    return next(execution for execution in executions if execution["item"]["name"] == CREATE_USER_REQUEST)


def postman_page(execution: dict) -> str:
    """Render one newman execution (request, response, test results) as an HTML page."""
    request, response = execution["request"], execution["response"]
    url = request["url"]
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    return environment.get_template("postman-execution.html").render(
        name=execution["item"]["name"],
        folder=folder_of(json.loads(COLLECTION.read_text()), execution["item"]["name"]),
        method=request["method"],
        raw_url=collection_url(execution["item"]["request"]["url"]),
        sent_url=f"{url['protocol']}://{'.'.join(url['host'])}:{url['port']}/{'/'.join(url['path'])}",
        request_headers=request["header"],
        request_body=pretty_json(request["body"]["raw"]),
        status=f"{response['code']} {response['status'].title()}",
        time=response["responseTime"],
        size=response["responseSize"],
        response_headers=response["header"],
        response_body=pretty_json(bytes(response["stream"]["data"]).decode()),
        assertions=execution["assertions"],
    )


def folder_of(collection: dict, name: str) -> str:
    """Return the name of the collection folder that holds the request called `name`."""
    for folder in collection["item"]:
        if any(item["name"] == name for item in folder.get("item", [])):
            return folder["name"]
    return collection["info"]["name"]


def collection_url(url: dict) -> str:
    """Return a request's URL as the collection writes it (`{{baseUrl}}/users`)."""
    return "/".join(["".join(url["host"]), *url["path"]])


def pretty_json(text: str) -> str:
    """Indent a JSON text for display."""
    return json.dumps(json.loads(text), indent=2)


def shoot_postman_create_user(browser: Browser, execution: dict) -> None:
    """The Postman collection's create-user request and response, as newman ran them."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_content(postman_page(execution))
    page.locator("main").screenshot(path=OUTPUT / "create-user-postman.png")
    page.close()


def main() -> None:
    """Make every screenshot from one live server on a throwaway database."""
    check_tools()
    OUTPUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, throwaway_database(settings_of(ScreenshotConfig)) as settings:
        try:
            server, url = start_server(settings, Path(scratch) / "server.log")
        except RuntimeError as error:
            sys.exit(f"screenshots: {error}")
        try:
            # A key shown in a picture must never work anywhere: it lives only in this throwaway database.
            key = make_api_key(settings, api_keys.SCOPES, "screenshots")
            payment = add_sample_data(url, key)
            execution = run_newman(url, key, Path(scratch) / "newman.json")
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                try:
                    shoot_authorize(browser, url, key)
                    shoot_swagger_ui(browser, url, key)
                    shoot_payment_response(browser, url, key, payment)
                    shoot_postman_create_user(browser, execution)
                finally:
                    browser.close()
        finally:
            stop_server(server)
    for name in ("swagger-authorize.png", "swagger-ui.png", "payment-response.png", "create-user-postman.png"):
        print(f"screenshots: wrote {(OUTPUT / name).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
