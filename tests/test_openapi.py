"""The OpenAPI document: complete, in step with the validation code, and true of the live server."""

import json
import re

import jsonschema
import pytest
import schemathesis
import schemathesis.engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.engine import events

from schemas import payment_schema, user_schema
from schemas.fields import FieldError
from schemas.payment_schema import CURRENCY_DECIMALS, PAYMENT_METHODS, STATUSES
from tests import api
from tests.conftest import run_sql
from utils.cards import CARD_BRANDS, holds_card_number

# SPEC §4, §8 and §9: every path and method, and nothing else.
OPERATIONS = {
    ("/users", "get"): {"200", "400", "401", "403", "503"},
    ("/users", "post"): {"201", "400", "401", "403", "409", "413", "415", "422", "503"},
    ("/users/{user_id}", "get"): {"200", "401", "403", "404", "503"},
    ("/users/{user_id}", "put"): {"200", "400", "401", "403", "404", "409", "413", "415", "422", "503"},
    ("/users/{user_id}", "patch"): {"200", "400", "401", "403", "404", "409", "413", "415", "422", "503"},
    ("/users/{user_id}", "delete"): {"204", "401", "403", "404", "409", "503"},
    ("/users/{user_id}/payments", "get"): {"200", "400", "401", "403", "404", "503"},
    ("/payments", "get"): {"200", "400", "401", "403", "503"},
    ("/payments", "post"): {"201", "400", "401", "403", "409", "413", "415", "422", "503"},
    ("/payments/{payment_id}", "get"): {"200", "401", "403", "404", "503"},
    ("/payments/{payment_id}", "put"): {"200", "400", "401", "403", "404", "409", "413", "415", "422", "503"},
    ("/payments/{payment_id}", "patch"): {"200", "400", "401", "403", "404", "409", "413", "415", "422", "503"},
    ("/payments/{payment_id}", "delete"): {"204", "401", "403", "404", "503"},
    ("/users/{user_id}/tokens", "post"): {"201", "400", "401", "403", "404", "413", "415", "422", "503"},
    ("/payments/{payment_id}/events", "get"): {"200", "400", "401", "403", "404", "503"},
    ("/events", "get"): {"200", "400", "401", "403", "503"},
    ("/events/{event_id}/redeliver", "post"): {"202", "400", "401", "403", "404", "409", "413", "415", "422", "503"},
    ("/webhook-endpoints", "get"): {"200", "400", "401", "403", "503"},
    ("/webhook-endpoints", "post"): {"201", "400", "401", "403", "413", "415", "422", "503"},
    ("/webhook-endpoints/{endpoint_id}", "get"): {"200", "401", "403", "404", "503"},
    ("/webhook-endpoints/{endpoint_id}", "patch"): {"200", "400", "401", "403", "404", "413", "415", "422", "503"},
    ("/webhook-endpoints/{endpoint_id}", "delete"): {"204", "401", "403", "404", "503"},
    ("/webhook-endpoints/{endpoint_id}/rotate-secret", "post"): {
        "200",
        "400",
        "401",
        "403",
        "404",
        "413",
        "415",
        "422",
        "503",
    },
    ("/webhook-endpoints/{endpoint_id}/deliveries", "get"): {"200", "400", "401", "403", "404", "503"},
    ("/webhook-endpoints/{endpoint_id}/test", "post"): {"202", "401", "403", "404", "409", "503"},
    ("/health", "get"): {"200", "503"},
}
TEST_CARD_NUMBERS = {"4111111111111111"}


@pytest.fixture(scope="module")
def document(app) -> dict:
    """The OpenAPI document as the app serves it."""
    response = app.test_client().get("/apispec.json")
    assert response.status_code == 200
    return response.get_json()


def follow(document: dict, node: dict) -> dict:
    """Follow a local `$ref` to what it names."""
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operations(document: dict):
    """Yield (path, method, operation) for every operation of the document."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_document_is_openapi_3_0_with_exactly_the_specified_operations(document):
    assert document["openapi"].startswith("3.0.")
    assert {(path, method) for path, method, _ in operations(document)} == set(OPERATIONS)


def test_every_route_of_the_app_is_documented(app, document):
    documented = {(path, method.upper()) for path, method, _ in operations(document)}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in ("users", "payments", "events", "webhooks", "health"):
            path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method) in documented


def test_operation_ids_are_unique_and_every_operation_has_a_summary_and_tag(document):
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    for _, _, operation in operations(document):
        assert operation["summary"] and operation["tags"]


@pytest.mark.parametrize(("path", "method"), sorted(OPERATIONS))
def test_every_operation_documents_each_status_it_can_return(document, path, method):
    responses = document["paths"][path][method]["responses"]
    assert set(responses) == OPERATIONS[path, method]


def test_every_error_is_problem_json_with_a_request_id_and_every_503_has_retry_after(document):
    for _, _, operation in operations(document):
        for status, response in operation["responses"].items():
            response = follow(document, response)
            assert "X-Request-Id" in response["headers"]
            if int(status) >= 400:
                assert list(response["content"]) == ["application/problem+json"]
            if status == "503":
                assert "Retry-After" in response["headers"]


def test_creations_document_location_and_idempotency(document):
    for path in ("/users", "/payments"):
        operation = document["paths"][path]["post"]
        headers = operation["responses"]["201"]["headers"]
        assert {"Location", "Idempotent-Replayed"} <= set(headers)
        names = {follow(document, parameter)["name"] for parameter in operation["parameters"]}
        assert "Idempotency-Key" in names


def test_lists_document_pagination_and_filters(document):
    expected = {
        "/users": {"limit", "after"},
        "/payments": {"limit", "after", "user_id", "status", "card_fingerprint"},
        "/users/{user_id}/payments": {"user_id", "limit", "after", "status", "card_fingerprint"},
    }
    for path, names in expected.items():
        operation = document["paths"][path]["get"]
        assert {follow(document, parameter)["name"] for parameter in operation["parameters"]} == names
        assert "Link" in operation["responses"]["200"]["headers"]


def test_enums_match_the_validation_code(document):
    schemas = document["components"]["schemas"]
    assert schemas["Currency"]["enum"] == sorted(CURRENCY_DECIMALS)
    assert schemas["PaymentMethod"]["enum"] == list(PAYMENT_METHODS)
    assert schemas["PaymentStatus"]["enum"] == list(STATUSES)
    assert schemas["NewPayment"]["properties"]["status"]["enum"] == [*STATUSES, None]
    brands = {*CARD_BRANDS, None}
    assert set(schemas["Payment"]["properties"]["card_brand"]["enum"]) == brands


def test_the_cvc_is_write_only_and_never_part_of_a_payment_response(document):
    schemas = document["components"]["schemas"]
    assert schemas["CardCvc"]["writeOnly"] is True
    assert "card_cvc" not in schemas["Payment"]["properties"]
    assert schemas["Payment"]["additionalProperties"] is False


def test_examples_show_no_card_number_but_the_well_known_test_number(document):
    for run in re.findall(r"[0-9](?:[ -]?[0-9])*", json.dumps(document)):
        if holds_card_number(run):
            assert re.sub(r"[ -]", "", run) in TEST_CARD_NUMBERS, run
    responses = json.dumps(document["components"]["examples"])
    assert re.findall(r"XXXX-XXXX-XXXX-[0-9]{4}", responses) and "4111" not in responses.replace("-1111", "")


# Each documented field schema against the validator it describes. Where the validator is the
# whole rule, the schema must accept exactly what it accepts, apart from the card numbers that free
# text refuses (a Luhn check is beyond a pattern; the descriptions say so). Where the validator
# also checks what a pattern cannot (Luhn, a real unexpired date, a valid address), everything it
# accepts must still fit the schema.
TRICKY = "0123456789 +()-/.:@aZé\t\n\r\x00\x08\x0b\x0e\x1c\x1f\x7f\x85\xa0\u2003\u3000"
PADDING = st.text(alphabet=" \t\n\x1c\xa0\u3000", max_size=3)
STRINGS = st.one_of(
    st.text(alphabet=TRICKY, max_size=40),
    st.text(max_size=40),
    st.builds(
        lambda pad, size, char, end: pad + char * size + end,
        PADDING,
        st.integers(0, 260),
        st.sampled_from("a0 -"),
        PADDING,
    ),
)
FIELD_SETTINGS = settings(
    max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
EXACT_FIELDS = {
    "UserName": user_schema.VALIDATORS["name"],
    "Country": user_schema.VALIDATORS["country"],
    "Phone": user_schema.VALIDATORS["phone"],
    "Description": payment_schema.VALIDATORS["description"],
    "CardCvc": payment_schema.VALIDATORS["card_cvc"],
}
FREE_TEXT_FIELDS = {"UserName", "Country", "Description"}
LOOSER_FIELDS = {
    "Email": user_schema.VALIDATORS["email"],
    "CardNumber": payment_schema.VALIDATORS["card_no"],
    "CardExpiry": payment_schema.VALIDATORS["card_expiry"],
    "Amount": payment_schema.VALIDATORS["amount"],
}


def accepts(validator, value) -> bool:
    """Return whether a field validator accepts a value."""
    try:
        validator(value)
    except FieldError:
        return False
    return True


def fits(document: dict, component: str, value) -> bool:
    """Return whether a value fits a documented field schema (`null` is handled by `nullable`)."""
    return jsonschema.Draft4Validator(document["components"]["schemas"][component]).is_valid(value)


@pytest.mark.parametrize("component", sorted(EXACT_FIELDS))
@settings(
    max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=STRINGS)
def test_a_field_schema_accepts_exactly_what_its_validator_accepts(document, component, value):
    refused_card = component in FREE_TEXT_FIELDS and holds_card_number(value)
    expected = fits(document, component, value) and not refused_card
    assert accepts(EXACT_FIELDS[component], value) == expected


@pytest.mark.parametrize("component", sorted(LOOSER_FIELDS))
@settings(
    max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.one_of(STRINGS, st.integers(), st.floats(), st.decimals(places=5)))
def test_whatever_a_validator_accepts_fits_its_field_schema(document, component, value):
    if accepts(LOOSER_FIELDS[component], value):
        assert fits(document, component, value)


@pytest.mark.parametrize(
    ("component", "value"),
    [
        ("Amount", "1500.50"),
        ("Amount", " +7 "),
        ("Amount", "0.01"),
        ("Amount", "999999999999.99"),
        ("Amount", "000000000000001"),
        ("CardNumber", "4111-1111-1111-1111"),
        ("CardExpiry", "12/99"),
        ("CardExpiry", "01/99"),
        ("CardExpiry", "2099-12-31"),
        ("CardExpiry", "2096-02-29"),
        ("CardExpiry", "2099-11"),
        ("Email", "John@Example.com"),
        ("Email", "x" * 64 + "@example.com"),
    ],
)
def test_values_the_validators_accept_fit_the_document(document, component, value):
    assert accepts(LOOSER_FIELDS[component], value)
    assert fits(document, component, value)


@pytest.mark.parametrize(
    ("component", "value"),
    [
        ("Amount", "\u0661\u0662"),  # Arabic-Indic digits
        ("Amount", "\t5"),
        ("Amount", "-5"),
        ("Amount", "0"),
        ("Amount", " +0.000 "),
        ("Amount", 0),
        ("Amount", "1000000000000"),
        ("Amount", "0001000000000000.5"),
        ("Amount", 1e12),
        ("CardExpiry", "2099-13"),
        ("CardExpiry", "2099-00"),
        ("CardExpiry", "13/29"),
        ("CardExpiry", "00/29"),
        ("CardExpiry", "2099-12-32"),
        ("CardExpiry", "2099-12-00"),
        ("CardExpiry", "2099-04-31"),
        ("CardExpiry", "2099-02-30"),
        ("CardExpiry", "0000-01"),
        ("Email", "x" * 65 + "@example.com"),
        ("Email", "john@localhost"),
        ("Email", "john@@example.com"),
        ("CardNumber", "4111111111111111" + " " * 60 + "junk"),
        ("CardNumber", "\uff14111111111111111"),  # a full-width digit
        ("CardExpiry", "\uff12099-12"),
        ("Phone", "\uff11234567890"),
    ],
)
def test_values_outside_the_document_are_refused(document, component, value):
    validator = {**EXACT_FIELDS, **LOOSER_FIELDS}[component]
    assert not fits(document, component, value)
    assert not accepts(validator, value)


def test_view_docstrings_add_nothing_to_the_document(document):
    assert "definitions" not in document
    for _, _, operation in operations(document):
        assert "responses" in operation and "operationId" in operation


def test_apidocs_without_a_slash_ends_at_swagger_ui(client):
    response = client.get("/apidocs", follow_redirects=True)
    assert response.status_code == 200
    assert b"swagger-ui-bundle.js" in response.data


def test_swagger_ui_loads_nothing_from_other_hosts(client):
    page = client.get("/apidocs/").get_data(as_text=True)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "googleapis" not in page and "jquery" not in page.lower()
    assert client.get("/apidocs/assets/swagger-ui-bundle.js").status_code == 200


def test_flasggers_bundled_swagger_ui_3_is_not_served(client):
    assert client.get("/flasgger_static/swagger-ui-bundle.js").status_code == 404
    assert client.get("/flasgger_static/lib/jquery.min.js").status_code == 404
    assert client.get("/apidocs/assets/lib/jquery.min.js").status_code == 404


# --- The document against the live server, with schemathesis -------------------------------------

# Schema-valid data can still break a rule that JSON Schema cannot state: an unknown user_id,
# a card that fails the Luhn check or has expired, an amount with more decimals than its
# currency has, a CVC of the wrong length for its brand. SPEC §3 answers those with 422, so 422
# is an accepted answer to positive data here; 400 and 415 are not, and nor is any 5xx.
POSITIVE_STATUSES = ["2xx", "404", "409", "422"]
SCHEMATHESIS_CONFIG = {
    "seed": 20261127,
    "generation": {"mode": "all", "deterministic": True, "database": "none", "max-examples": 20},
    "checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE_STATUSES}},
}


def ensure_example_user(database_settings: dict) -> None:
    """Make sure user 1, whom the document's payment examples name, exists."""
    run_sql(
        database_settings,
        "INSERT IGNORE INTO users (id, name, email, phone, country, created_at, updated_at)"
        " VALUES (1, 'John Doe', 'john.doe@example.org', '1234567890', 'India', UTC_TIMESTAMP(), UTC_TIMESTAMP())",
    )


def is_replayed_creation(recorder, case_id: str) -> bool:
    """Whether a call followed a link from a replayed 201 (`Idempotent-Replayed: true`)."""
    parent = recorder.find_parent(case_id=case_id)
    response = parent and recorder.find_response(case_id=parent.id)
    return response is not None and response.headers.get("idempotent-replayed") == ["true"]


def describe_failures(recorder) -> list[str]:
    """Describe each failed check of a scenario, with a curl command that reproduces it."""
    found = []
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            # A replayed 201 repeats the original body (SPEC §4), so it can name a resource that was
            # deleted since; a 404 for it is right, not a resource that failed to appear.
            if check.name == "ensure_resource_availability" and is_replayed_creation(recorder, case_id):
                continue
            failure = check.failure_info.failure
            found.append(
                f"{recorder.label}: {check.name}: {failure.title}\n{failure.message}\n{check.failure_info.code_sample}"
            )
    return found


def run_schemathesis(schema) -> tuple[list[str], dict]:
    """Run every phase against the server; return the failures and the calls made per phase."""
    problems, calls = [], {}
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            phase = str(event.phase)
            calls[phase] = calls.get(phase, 0) + len(event.recorder.interactions)
            problems += describe_failures(event.recorder)
        elif isinstance(event, events.NonFatalError):
            problems.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            problems.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            problems += [str(failure) for failure in event.failures]
    return problems, calls


def test_the_live_server_answers_as_the_document_says(live_server, database):
    ensure_example_user(database)
    config = schemathesis.Config.from_dict({**SCHEMATHESIS_CONFIG, "headers": dict(api.HEADERS)})
    schema = schemathesis.openapi.from_url(f"{live_server.url}/apispec.json", config=config)
    problems, calls = run_schemathesis(schema)
    assert not problems, "\n\n".join(problems)
    assert set(calls) == {"examples", "coverage", "fuzzing", "stateful"}, calls
    assert min(calls.values()) > 0 and sum(calls.values()) >= 300, calls
