"""Swagger UI at /apidocs, served offline from the swagger-ui-bundle package."""

from pathlib import Path

import swagger_ui_bundle
from flasgger import Swagger
from flask import Blueprint, Flask, send_from_directory

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.yml"
assets = Blueprint("swagger_assets", __name__)


@assets.get("/apidocs/assets/<path:filename>")
def swagger_asset(filename: str):
    """Serve a Swagger UI file from the installed package."""
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=3600)


def register_apidocs(app: Flask) -> None:
    """Publish the OpenAPI document at /apispec.json and Swagger UI at /apidocs."""
    app.config["SWAGGER"] = {
        "openapi": "3.0.3",
        "specs_route": "/apidocs/",
        "swagger_ui_bundle_js": "/apidocs/assets/swagger-ui-bundle.js",
        "swagger_ui_standalone_preset_js": "/apidocs/assets/swagger-ui-standalone-preset.js",
        "swagger_ui_css": "/apidocs/assets/swagger-ui.css",
        "favicon": "/apidocs/assets/favicon-32x32.png",
    }
    app.register_blueprint(assets)
    Swagger(app, template_file=str(TEMPLATE_PATH))
