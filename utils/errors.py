"""The API's error hierarchy, rendered as RFC 9457 problem details."""

from http import HTTPStatus

PROBLEM_MIMETYPE = "application/problem+json"


class ApiError(Exception):
    """An error the API reports to its client as application/problem+json."""

    status = 500
    slug = "internal-error"
    detail = "The server could not complete the request."

    def __init__(self, detail: str | None = None, *, errors: dict | None = None):
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail
        self.errors = errors
        self.headers: dict[str, str] = {}

    @property
    def title(self) -> str:
        """Return the HTTP reason phrase of the status."""
        return HTTPStatus(self.status).phrase

    def to_problem(self) -> dict:
        """Return the problem details document of this error."""
        problem = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            problem["errors"] = self.errors
        return problem


class BadRequest(ApiError):
    """The request is malformed: unreadable JSON or a bad query parameter."""

    status = 400
    slug = "bad-request"
    detail = "The request could not be understood."


class NotFound(ApiError):
    """The resource does not exist."""

    status = 404
    slug = "not-found"
    detail = "No resource exists at this address."


class Conflict(ApiError):
    """The request conflicts with the resource's current state."""

    status = 409
    slug = "conflict"


class DuplicateEmail(Conflict):
    """Another user already has this email address."""

    slug = "duplicate-email"
    detail = "A user with this email address already exists."


class UserHasPayments(Conflict):
    """A user with payments cannot be deleted."""

    slug = "user-has-payments"
    detail = "This user has payments; payments are financial records and are kept."


class InvalidTransition(Conflict):
    """The payment cannot move to the requested status or change that field."""

    slug = "invalid-transition"


class EndpointDisabled(Conflict):
    """A webhook endpoint is disabled, so nothing would be sent to it."""

    slug = "endpoint-disabled"
    detail = "This webhook endpoint is disabled: enable it (PATCH enabled: true) first."


class NothingToRedeliver(Conflict):
    """An event was never queued for any webhook endpoint, and the request named none."""

    slug = "nothing-to-redeliver"
    detail = "This event was never sent to a webhook endpoint; name one with endpoint_id."


class IdempotencyInFlight(Conflict):
    """A request with the same Idempotency-Key is still being processed."""

    slug = "idempotency-in-flight"
    detail = "A request with this Idempotency-Key is still in progress; retry shortly."

    def __init__(self, detail: str | None = None):
        super().__init__(detail)
        self.headers["Retry-After"] = "1"


class UnsupportedMediaType(ApiError):
    """The body is not JSON."""

    status = 415
    slug = "unsupported-media-type"
    detail = "The request body must be JSON (Content-Type: application/json)."


class ValidationFailed(ApiError):
    """One or more fields are invalid; `errors` names each of them."""

    status = 422
    slug = "validation-error"
    detail = "One or more fields are invalid."


class IdempotencyKeyReused(ApiError):
    """The Idempotency-Key was already used with a different request body."""

    status = 422
    slug = "idempotency-key-reused"
    detail = "This Idempotency-Key was already used with a different request body."


class ServiceUnavailable(ApiError):
    """The database does not answer, or no pooled connection became free in time."""

    status = 503
    slug = "service-unavailable"
    detail = "The database is unavailable; retry shortly."
    retry_after_seconds = 2

    def __init__(self, detail: str | None = None):
        super().__init__(detail)
        self.headers["Retry-After"] = str(self.retry_after_seconds)


class ServerMisconfigured(ApiError):
    """The server cannot safely use its database: other card keys, or a schema older than the code."""

    slug = "server-misconfigured"
    detail = "The server is misconfigured and refuses to use its database; its log says why."

    def __init__(self, explanation: str):
        super().__init__()
        self.explanation = explanation


class CardKeysMismatch(ServerMisconfigured):
    """The configured card keys are not the ones the database's card data was written with (until a restart)."""


class Unauthorized(ApiError):
    """No credential, or one that is unknown, malformed, expired, revoked or badly signed: one answer for all."""

    status = 401
    slug = "unauthorized"
    detail = "A valid API key or user token is required: send it as `Authorization: Bearer <credential>`."

    def __init__(self, *, credential_sent: bool):
        super().__init__()
        error = ', error="invalid_token"' if credential_sent else ""
        self.headers["WWW-Authenticate"] = f'Bearer realm="payments-api"{error}'


class InsufficientScope(ApiError):
    """The credential is valid but does not grant what the request needs."""

    status = 403
    slug = "insufficient-scope"

    def __init__(self, scope: str, detail: str | None = None):
        super().__init__(detail or f"This credential lacks the scope {scope!r}, which this request needs.")
        self.headers["WWW-Authenticate"] = f'Bearer error="insufficient_scope", scope="{scope}"'
