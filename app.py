"""The Payments API: application factory and development server entry point."""

import os
from types import FunctionType

import mysql.connector
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

import commands
import db
from config import Config, load_keys
from routes import event_routes, payment_routes, user_routes, webhook_routes
from services import access, idempotency, key_checks
from utils.crypto_utils import KeyConfigError
from utils.errors import PROBLEM_MIMETYPE, ApiError, ServiceUnavailable
from utils.json_provider import OrjsonProvider
from utils.logs import configure_logging, current_request_id
from web.apidocs import register_apidocs
from web.middleware import RequestMiddleware
from web.server_limits import ServerLimits


class PaymentsApi(Flask):
    """Flask, remembering which of its functions need wrapping to run synchronously.

    Flask asks of each hook and view function on every request (three times for a point read),
    and the answer (inspect.iscoroutinefunction) was a measurable part of a request's own cost.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._synchronous = {}

    def ensure_sync(self, func):
        """Return Flask's synchronous form of a function, worked out once per plain function."""
        # Only plain functions: a class-based view makes a new bound method on every request,
        # and remembering those would keep every view object alive.
        if type(func) is not FunctionType:
            return super().ensure_sync(func)
        synchronous = self._synchronous.get(func)
        if synchronous is None:
            self._synchronous[func] = synchronous = super().ensure_sync(func)
        return synchronous


def create_app(config_class: type = Config) -> Flask:
    """Build the app: configuration, keys, database, blueprints, errors, request ids and logs, docs."""
    app = PaymentsApi(__name__)
    # "/users//1" is a 404 like any other unknown URL, not a redirect to /users/1 (an HTML page
    # whose Location would repeat the path, and the Host header).
    app.url_map.merge_slashes = False
    app.json = OrjsonProvider(app)
    app.config.from_object(config_class)
    configure_logging(app.config["LOG_LEVEL"])
    register_keys(app)
    db.init_app(app)
    key_checks.init_app(app)
    idempotency.init_app(app)
    commands.init_app(app)
    register_blueprints(app)
    register_error_handlers(app)
    app.wsgi_app = RequestMiddleware(ServerLimits(app.wsgi_app, app.config["MAX_CONTENT_LENGTH"]))
    register_apidocs(app, access.ENDPOINT_SCOPES)
    access.init_app(app)
    return app


def register_keys(app: Flask) -> None:
    """Load the card keys and the token signing keys, refusing to start without valid ones."""
    try:
        keys = load_keys(app.config)
    except KeyConfigError as error:
        raise SystemExit(f"Cannot start the Payments API: {error}") from None
    app.extensions["jwt_keys"] = keys.pop("jwt")
    app.extensions["webhook_secret_keys"] = keys.pop("webhook_secret")
    app.extensions["card_keys"] = keys


def register_blueprints(app: Flask) -> None:
    """Mount the resources and the health check."""
    app.register_blueprint(user_routes.bp)
    app.register_blueprint(payment_routes.bp)
    app.register_blueprint(event_routes.bp)
    app.register_blueprint(webhook_routes.bp)
    app.add_url_rule("/health", "health", health)


def health():
    """Say whether the database answers (200) or not (503)."""
    with db.autocommit() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchall()
    return jsonify({"status": "ok", "database": "up"})


def problem_response(problem: dict, headers: dict | None = None) -> Response:
    """Return an application/problem+json response."""
    response = jsonify(problem)
    response.status_code = problem["status"]
    response.mimetype = PROBLEM_MIMETYPE
    response.headers.update(headers or {})
    return response


def register_error_handlers(app: Flask) -> None:
    """Render every error, the framework's included, as problem+json."""

    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError):
        return problem_response(error.to_problem(), error.headers)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException):
        # An unexpected exception was already logged by Flask, with the request id.
        problem = {
            "type": "about:blank",
            "title": error.name,
            "status": error.code,
            "detail": _http_error_detail(error),
        }
        allow = error.get_response().headers.get("Allow")
        return problem_response(problem, {"Allow": allow} if allow else None)

    @app.errorhandler(mysql.connector.Error)
    def handle_database_error(error: mysql.connector.Error):
        db.mark_broken()
        if db.is_transient(error):
            app.logger.warning("database unavailable: errno %s", error.errno)
            return handle_api_error(ServiceUnavailable())
        app.logger.error("database error: errno %s", error.errno)
        return handle_http_exception(InternalServerError())


def _http_error_detail(error: HTTPException) -> str:
    """Describe a framework error without echoing the request."""
    if error.code == 413:
        return "The request body is larger than 64 KiB."
    if error.code == 500:
        return f"An unexpected error occurred; quote request id {current_request_id() or '-'} when reporting it."
    return error.description or error.name


if __name__ == "__main__":
    create_app().run(host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
