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


def document_paths(app: Flask) -> dict:
    """Build `paths` from the app's routes: each method of a view from its operations file."""
    paths: dict = {}
    for rule in app.url_map.iter_rules():
        source = operations_file(rule.endpoint)
        if not source.is_file():
            continue
        operations = load_yaml(source)
        for method in sorted(rule.methods - UNDOCUMENTED_METHODS):
            if method.lower() not in operations:
                raise LookupError(f"{source.relative_to(DOCS_DIR.parent)} does not document {method}")
            paths.setdefault(openapi_path(rule.rule), {})[method.lower()] = operations[method.lower()]
    return paths


def build_document(app: Flask) -> dict:
    """Return the whole OpenAPI document: the shared template plus every documented route."""
    document = load_yaml(TEMPLATE_PATH)
    document["paths"] = document_paths(app)
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


def register_apidocs(app: Flask) -> None:
    """Publish the OpenAPI document at /apispec.json and Swagger UI at /apidocs."""
    app.config["SWAGGER"] = swagger_config()
    Swagger(app, template=build_document(app))
    # Browsers may keep Swagger UI's files (the only static files) for an hour; all else is no-store.
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = ASSETS_MAX_AGE
