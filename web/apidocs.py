"""The OpenAPI document (docs/) at /apispec.json and Swagger UI at /apidocs, served offline by flasgger."""

import re
from pathlib import Path

import flask_swagger_ui
import yaml
from flasgger import Swagger
from flask import Flask

# flask-swagger-ui ships a current Swagger UI 5.x (and a current DOMPurify) in its dist/ folder.
SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
TEMPLATE_PATH = DOCS_DIR / "openapi.yml"
OPERATIONS_DIR = DOCS_DIR / "operations"
SPEC_ROUTE = "/apispec.json"
UI_ROUTE = "/apidocs/"
ASSETS_ROUTE = "/apidocs/assets"
ASSETS_MAX_AGE = 3600
UNDOCUMENTED_METHODS = frozenset({"HEAD", "OPTIONS"})
AUTH_RESPONSES = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
}
_RULE_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


def load_yaml(path: Path) -> dict:
    """Read one YAML file of the document."""
    with path.open(encoding="utf-8") as file:
        return yaml.safe_load(file)


def operations_file(endpoint: str) -> Path:
    """Return the file that documents a view: docs/operations/<blueprint>/<view>.yml."""
    return OPERATIONS_DIR.joinpath(*endpoint.split(".")).with_suffix(".yml")


def openapi_path(rule: str) -> str:
    """Turn a Flask rule (`/users/<user_id>`) into an OpenAPI path (`/users/{user_id}`)."""
    return _RULE_ARGUMENT.sub(r"{\1}", rule)


def document_paths(app: Flask, scopes: dict[str, str]) -> dict:
    """Build `paths` from the app's routes: each method of a view from its operations file, with its scope."""
    paths: dict = {}
    for rule in app.url_map.iter_rules():
        source = operations_file(rule.endpoint)
        if not source.is_file():
            continue
        operations = load_yaml(source)
        for method in sorted(rule.methods - UNDOCUMENTED_METHODS):
            if method.lower() not in operations:
                raise LookupError(f"{source.relative_to(DOCS_DIR.parent)} does not document {method}")
            operation = with_security(operations[method.lower()], scopes.get(rule.endpoint))
            paths.setdefault(openapi_path(rule.rule), {})[method.lower()] = operation
    return paths


def with_security(operation: dict, scope: str | None) -> dict:
    """Declare who may call an operation: public, or a bearer credential with `scope` (401 and 403 otherwise).

    OpenAPI 3.0 gives a bearer scheme no scopes of its own, so the scope is named in `x-scope`
    and in the description, which Swagger UI shows.
    """
    if scope is None:
        return {**operation, "security": []}
    responses = {**operation["responses"], **AUTH_RESPONSES}
    description = f"{operation.get('description', '')}\n\n**Scope:** `{scope}`".strip()
    return {
        **operation,
        "description": description,
        "security": [{"bearerAuth": []}],
        "x-scope": scope,
        "responses": responses,
    }


def build_document(app: Flask, scopes: dict[str, str]) -> dict:
    """Return the whole OpenAPI document: the shared template plus every documented route."""
    document = load_yaml(TEMPLATE_PATH)
    document["paths"] = document_paths(app, scopes)
    return document


def swagger_config() -> dict:
    """Return flasgger's settings: one spec, no paths from docstrings, assets from flask-swagger-ui."""
    return {
        "openapi": "3.0.3",
        "title": "Payments API",
        "specs": [
            {
                "endpoint": "apispec",
                "route": SPEC_ROUTE,
                # The document comes from docs/ only; view docstrings must not add operations.
                "rule_filter": lambda rule: False,
                "model_filter": lambda tag: False,
            }
        ],
        "specs_route": UI_ROUTE,
        "headers": [],
        # Swagger UI 5 from flask-swagger-ui, so flasgger's bundled 3.x and jQuery are never served.
        "static_folder": str(SWAGGER_UI_DIST),
        "static_url_path": ASSETS_ROUTE,
        "swagger_ui_bundle_js": f"{ASSETS_ROUTE}/swagger-ui-bundle.js",
        "swagger_ui_standalone_preset_js": f"{ASSETS_ROUTE}/swagger-ui-standalone-preset.js",
        "swagger_ui_css": f"{ASSETS_ROUTE}/swagger-ui.css",
        "favicon": f"{ASSETS_ROUTE}/favicon-32x32.png",
        "jquery_js": "",
    }


def register_apidocs(app: Flask, scopes: dict[str, str]) -> None:
    """Publish the OpenAPI document at /apispec.json and Swagger UI at /apidocs; `scopes` names each endpoint's."""
    app.config["SWAGGER"] = swagger_config()
    Swagger(app, template=build_document(app, scopes))
    # Browsers may keep Swagger UI's files (the only static files) for an hour; all else is no-store.
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = ASSETS_MAX_AGE
