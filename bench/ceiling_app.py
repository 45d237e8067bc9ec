"""The throughput ceiling: a bare Flask JSON route, served under the API's own gunicorn config.

Every endpoint of the benchmark is reported as a fraction of this app's requests per second,
measured in the same run, so the figures hold across machines and hours.
"""

from flask import Flask, jsonify


def create_app() -> Flask:
    """Return an app with a single JSON route, /hello."""
    app = Flask(__name__)

    @app.get("/hello")
    def hello():
        return jsonify({"hello": "world"})

    return app
