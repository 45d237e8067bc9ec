"""Access control: API keys with scopes, user tokens that act for one user, and one answer for every refusal."""

import base64
import hashlib
import json
import re
import time
from datetime import timedelta

import jwt
import mysql.connector
import pytest

from app import create_app
from db import connection_settings
from services import api_keys, tokens
from tests import api
from tests.conftest import SuiteConfig, card_payment, config_dict, init_test_db, make_api_key, run_sql
from utils.crypto_utils import generate_key
from utils.formatting import utc_now

REALM = 'Bearer realm="payments-api"'
INVALID = 'Bearer realm="payments-api", error="invalid_token"'
ALL_TOKEN_SCOPES = ["users:read", "payments:read", "payments:write"]


def bearer(credential: str) -> dict:
    """Return an Authorization header that sends a credential."""
    return {"Authorization": f"Bearer {credential}"}


def same_body(response) -> dict:
    """Return a refusal's body without what differs between any two responses (the request id)."""
    return {name: value for name, value in response.get_json().items() if name not in ("instance", "request_id")}


def signing_key(app) -> bytes:
    """Return the key the app signs user tokens with."""
    keyring = app.extensions["jwt_keys"]
    return keyring.keys[keyring.current_version]


def claims_for(user_id: int, **changes) -> dict:
    """Return the claims of a valid token for a user, with some changed (a value of None removes the claim)."""
    now = int(time.time())
    claims = {
        "iss": "payments-api",
        "aud": "payments-api",
        "sub": str(user_id),
        "scope": " ".join(ALL_TOKEN_SCOPES),
        "iat": now,
        "exp": now + 600,
        "jti": "test",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def forge(key: bytes | str, claims: dict, algorithm: str = "HS256", kid: str | None = "1") -> str:
    """Sign claims as a token would be, with any key, algorithm and kid."""
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def unsigned(claims: dict) -> str:
    """Return a token with `alg: none` and no signature."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': '1'})}.{part(claims)}."


def tampered(token: str, user_id: int) -> str:
    """Return a token whose payload names another user, its signature left as it was."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(user_id)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def mint(client, user_id: int, scopes=None, **body) -> dict:
    """Ask for a user token with the suite's key; return the answer's JSON."""
    response = client.post(f"/users/{user_id}/tokens", json={"scopes": scopes or ALL_TOKEN_SCOPES, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def two_users(make_user, make_payment):
    """Two users with a payment each."""
    mine, theirs = make_user(), make_user()
    return mine, make_payment(user_id=mine["id"]), theirs, make_payment(user_id=theirs["id"])


@pytest.fixture
def key_of(database):
    """Make an API key with some scopes in the suite's database; return it."""
    return lambda *scopes: make_api_key(database, scopes or api_keys.SCOPES)


def test_no_credential_is_a_401_problem_naming_the_realm(client):
    response = client.get("/payments", headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == REALM
    assert response.content_type == "application/problem+json"
    assert response.get_json()["type"] == "/problems/unauthorized"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token abc", "payapi_sk_", "Bearer", "Bearer   "])
def test_another_scheme_or_a_bare_credential_is_refused_like_no_credential(client, header):
    response = client.get("/payments", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == REALM


def refused_credentials(app, database, user_id: int) -> dict[str, str]:
    """Return every kind of bad credential, by what is wrong with it."""
    key = signing_key(app)
    valid = forge(key, claims_for(user_id))
    expired_key = make_api_key(database, name="expired")
    run_sql(
        database, "UPDATE api_keys SET expires_at = %s WHERE key_hash = %s", utc_now(), api_keys.hash_key(expired_key)
    )
    revoked_key = make_api_key(database, name="revoked")
    run_sql(
        database, "UPDATE api_keys SET revoked_at = %s WHERE key_hash = %s", utc_now(), api_keys.hash_key(revoked_key)
    )
    unknown_key = api_keys.new_key()
    return {
        "garbage": "garbage",
        "unknown key": unknown_key,
        "key with a bad checksum": unknown_key[:-1] + ("A" if unknown_key[-1] != "A" else "B"),
        "key too short": unknown_key[:-3],
        "revoked key": revoked_key,
        "expired key": expired_key,
        "alg none": unsigned(claims_for(user_id)),
        "HS256 signed with a public value": forge(b"payments-api", claims_for(user_id)),
        "HS512 under the right key": forge(key, claims_for(user_id), algorithm="HS512"),
        "wrong aud": forge(key, claims_for(user_id, aud="someone-else")),
        "wrong iss": forge(key, claims_for(user_id, iss="someone-else")),
        "expired exp": forge(key, claims_for(user_id, iat=int(time.time()) - 1200, exp=int(time.time()) - 600)),
        "no exp": forge(key, claims_for(user_id, exp=None)),
        "unknown kid": forge(key, claims_for(user_id), kid="7"),
        "no kid": forge(key, claims_for(user_id), kid=None),
        "another key's signature": forge(base64.b64decode(generate_key()), claims_for(user_id)),
        "tampered payload": tampered(valid, user_id + 1),
        "scope beyond a token's": forge(key, claims_for(user_id, scope="users:write")),
        "truncated": valid[:-4],
    }


def test_every_bad_credential_gets_the_same_401_and_changes_nothing(app, client, database, make_user, sql):
    user = make_user()
    refusals = refused_credentials(app, database, user["id"])
    before = sql("SELECT COUNT(*) AS n FROM payments")[0]["n"]
    bodies = []
    for reason, credential in refusals.items():
        for method, url, body in [("get", "/payments", None), ("post", "/payments", card_payment(user["id"]))]:
            response = getattr(client, method)(url, json=body, headers=bearer(credential))
            assert response.status_code == 401, reason
            assert response.headers["WWW-Authenticate"] == INVALID, reason
            assert response.content_type == "application/problem+json", reason
            bodies.append(same_body(response))
    assert all(body == bodies[0] for body in bodies)
    assert sql("SELECT COUNT(*) AS n FROM payments")[0]["n"] == before


def test_a_key_that_is_valid_is_let_through_and_a_lowercase_scheme_is_accepted(client, key_of):
    key = key_of("payments:read")
    assert client.get("/payments", headers=bearer(key)).status_code == 200
    assert client.get("/payments", headers={"Authorization": f"bearer {key}"}).status_code == 200


def test_a_read_only_key_on_a_write_is_403_naming_the_scope_and_writes_nothing(client, key_of, make_user, sql):
    user = make_user()
    key = key_of("payments:read", "users:read")
    before = sql("SELECT COUNT(*) AS n FROM payments")[0]["n"]
    response = client.post("/payments", json=card_payment(user["id"]), headers=bearer(key))
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="payments:write"'
    assert response.get_json()["type"] == "/problems/insufficient-scope"
    assert "payments:write" in response.get_json()["detail"]
    assert sql("SELECT COUNT(*) AS n FROM payments")[0]["n"] == before


def test_a_write_scope_does_not_imply_the_read_scope(client, key_of):
    response = client.get("/users", headers=bearer(key_of("users:write")))
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="users:read"'


@pytest.mark.parametrize("path", ["/health", "/apidocs/", "/apispec.json"])
def test_health_swagger_ui_and_the_openapi_document_need_no_credential(client, path):
    assert client.get(path, headers={"Authorization": ""}).status_code == 200


def test_a_user_token_is_a_jwt_with_the_claims_of_the_specification(app, client, make_user):
    user = make_user()
    before = int(time.time())
    answer = mint(client, user["id"], ["payments:read"])
    assert answer["scopes"] == ["payments:read"]
    header = jwt.get_unverified_header(answer["token"])
    assert header["alg"] == "HS256" and header["kid"] == "1"
    claims = jwt.decode(answer["token"], signing_key(app), algorithms=["HS256"], audience="payments-api")
    assert claims["sub"] == str(user["id"]) and claims["scope"] == "payments:read" and claims["iss"] == "payments-api"
    assert claims["exp"] - claims["iat"] == 900 and before <= claims["iat"] <= int(time.time())
    assert len(claims["jti"]) >= 16
    assert answer["expires_at"].endswith("Z")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"scopes": []},
        {"scopes": ["users:write"]},
        {"scopes": ["tokens:write"]},
        {"scopes": ["payments:read", "payments:read"]},
        {"scopes": "payments:read"},
        {"scopes": ["payments:read"], "expires_in": 3601},
        {"scopes": ["payments:read"], "expires_in": 0},
        {"scopes": ["payments:read"], "expires_in": "60"},
        {"scopes": ["payments:read"], "expires_in": True},
        {"scopes": ["payments:read"], "audience": "x"},
    ],
)
def test_a_bad_token_request_is_a_422(client, make_user, body):
    response = client.post(f"/users/{make_user()['id']}/tokens", json=body)
    assert response.status_code == 422
    assert response.get_json()["errors"]


def test_a_token_lives_as_long_as_asked_up_to_an_hour(app, client, make_user):
    answer = mint(client, make_user()["id"], ["users:read"], expires_in=3600)
    claims = jwt.decode(answer["token"], signing_key(app), algorithms=["HS256"], audience="payments-api")
    assert claims["exp"] - claims["iat"] == 3600


def test_minting_needs_tokens_write_an_existing_user_and_only_scopes_the_caller_holds(client, key_of, make_user):
    user = make_user()
    no_mint = client.post(
        f"/users/{user['id']}/tokens", json={"scopes": ["users:read"]}, headers=bearer(key_of("users:read"))
    )
    assert no_mint.status_code == 403
    assert no_mint.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="tokens:write"'
    assert client.post("/users/999999999/tokens", json={"scopes": ["users:read"]}).status_code == 404
    narrow = key_of("tokens:write", "payments:read")
    beyond = client.post(f"/users/{user['id']}/tokens", json={"scopes": ["payments:write"]}, headers=bearer(narrow))
    assert beyond.status_code == 403
    assert beyond.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="payments:write"'


def test_a_token_lists_only_its_users_payments(client, two_users):
    mine, my_payment, theirs, their_payment = two_users
    token = mint(client, mine["id"])["token"]
    listed = client.get("/payments?limit=1000", headers=bearer(token)).get_json()
    assert {payment["user_id"] for payment in listed} == {mine["id"]}
    assert my_payment["id"] in {payment["id"] for payment in listed}
    assert client.get(f"/users/{mine['id']}/payments", headers=bearer(token)).status_code == 200


def test_a_token_finds_nothing_of_another_user_and_changes_nothing_of_theirs(client, two_users, sql):
    mine, _, theirs, their_payment = two_users
    token = bearer(mint(client, mine["id"])["token"])
    missing_payment = client.get("/payments/999999999", headers=token)
    attempts = [
        client.get(f"/payments/{their_payment['id']}", headers=token),
        client.patch(f"/payments/{their_payment['id']}", json={"status": "completed"}, headers=token),
        client.put(f"/payments/{their_payment['id']}", json=card_payment(mine["id"]), headers=token),
        client.delete(f"/payments/{their_payment['id']}", headers=token),
    ]
    for response in attempts:
        assert response.status_code == 404
        assert same_body(response) == same_body(missing_payment)
    for response in [
        client.get(f"/users/{theirs['id']}", headers=token),
        client.get(f"/users/{theirs['id']}/payments", headers=token),
    ]:
        assert response.status_code == 404
    for user_id in (theirs["id"], mine["id"]):  # a token never holds users:write, whoever the user is
        assert client.patch(f"/users/{user_id}", json={"name": "X"}, headers=token).status_code == 403
    stored = sql("SELECT status, user_id FROM payments WHERE id = %s", (their_payment["id"],))
    assert stored == [{"status": their_payment["status"], "user_id": theirs["id"]}]
    assert sql("SELECT name FROM users WHERE id = %s", (theirs["id"],)) == [{"name": theirs["name"]}]


def test_a_token_creating_a_payment_for_another_user_is_refused_as_for_no_user(client, two_users, sql):
    mine, _, theirs, _ = two_users
    token = bearer(mint(client, mine["id"])["token"])
    before = sql("SELECT COUNT(*) AS n FROM payments")[0]["n"]
    other = client.post("/payments", json=card_payment(theirs["id"]), headers=token)
    nobody = client.post("/payments", json=card_payment(999999999), headers=token)
    assert other.status_code == nobody.status_code == 422
    assert same_body(other) == same_body(nobody)
    assert sql("SELECT COUNT(*) AS n FROM payments")[0]["n"] == before


def test_a_token_payment_without_user_id_is_its_users(client, make_user):
    user = make_user()
    body = card_payment(user["id"])
    del body["user_id"]
    response = client.post("/payments", json=body, headers=bearer(mint(client, user["id"])["token"]))
    assert response.status_code == 201
    assert response.get_json()["user_id"] == user["id"]


def test_a_token_sees_and_changes_its_own_user_and_payments(client, two_users):
    mine, my_payment, _, _ = two_users
    token = bearer(mint(client, mine["id"])["token"])
    assert client.get(f"/users/{mine['id']}", headers=token).status_code == 200
    assert client.get(f"/payments/{my_payment['id']}", headers=token).status_code == 200
    changed = client.patch(f"/payments/{my_payment['id']}", json={"description": "Mine"}, headers=token)
    assert changed.status_code == 200


def test_a_token_cannot_list_users_delete_its_user_or_mint_tokens(client, make_user, sql):
    user = make_user()
    token = bearer(mint(client, user["id"])["token"])
    for response, scope in [
        (client.get("/users", headers=token), "users:read"),
        (client.delete(f"/users/{user['id']}", headers=token), "users:write"),
        (client.post(f"/users/{user['id']}/tokens", json={"scopes": ["users:read"]}, headers=token), "tokens:write"),
    ]:
        assert response.status_code == 403
        assert response.headers["WWW-Authenticate"] == f'Bearer error="insufficient_scope", scope="{scope}"'
    assert sql("SELECT id FROM users WHERE id = %s", (user["id"],)) == [{"id": user["id"]}]


def test_a_tokens_scopes_bound_what_it_does(client, make_user):
    user = make_user()
    reader = bearer(mint(client, user["id"], ["payments:read"])["token"])
    response = client.post("/payments", json=card_payment(user["id"]), headers=reader)
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="payments:write"'
    assert client.get(f"/users/{user['id']}", headers=reader).status_code == 403


def test_the_tokens_of_a_deleted_user_stop_working(client, make_user):
    user = make_user()
    token = bearer(mint(client, user["id"])["token"])
    assert client.get("/payments", headers=token).status_code == 200
    assert client.delete(f"/users/{user['id']}").status_code == 204
    response = client.get("/payments", headers=token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID


def test_a_user_deleted_elsewhere_has_its_tokens_refused_within_the_cache_time(client, make_user, sql):
    user = make_user()
    token = bearer(mint(client, user["id"])["token"])
    assert client.get("/payments", headers=token).status_code == 200
    sql("DELETE FROM users WHERE id = %s", (user["id"],))  # as another worker, or the operator, would
    deadline = time.monotonic() + tokens.LIVE_USER_SECONDS + 1
    while client.get("/payments", headers=token).status_code == 200:
        assert time.monotonic() < deadline, "a deleted user's token still works after the cache time"
        time.sleep(0.25)
    assert client.get("/payments", headers=token).status_code == 401


def test_tokens_signed_by_the_previous_signing_key_work_after_a_rotation(client, make_user):
    user = make_user()
    old_token = mint(client, user["id"])["token"]

    class Rotated(SuiteConfig):
        JWT_SIGNING_KEYS = f"2:{generate_key()},{SuiteConfig.JWT_SIGNING_KEYS}"

    rotated = create_app(Rotated).test_client()
    assert rotated.get("/payments", headers=bearer(old_token)).status_code == 200
    new_token = rotated.post(f"/users/{user['id']}/tokens", json={"scopes": ["payments:read"]}).get_json()["token"]
    assert jwt.get_unverified_header(new_token)["kid"] == "2"
    assert client.get("/payments", headers=bearer(new_token)).status_code == 401


@pytest.mark.parametrize("value", [None, "", "1:short", "not-a-keyring", "0:" + generate_key()])
def test_the_app_refuses_to_start_without_a_valid_signing_key(value):
    class Unsigned(SuiteConfig):
        JWT_SIGNING_KEYS = value

    with pytest.raises(SystemExit, match="JWT_SIGNING_KEYS"):
        create_app(Unsigned)


def test_the_signing_key_must_differ_from_the_card_keys():
    class Shared(SuiteConfig):
        JWT_SIGNING_KEYS = SuiteConfig.CARD_NUMBER_KEYS

    with pytest.raises(SystemExit, match="JWT_SIGNING_KEYS"):
        create_app(Shared)


def test_create_api_key_prints_the_key_alone_and_stores_only_its_hash(runner, database, sql):
    result = runner.invoke(args=["create-api-key", "--name", "billing", "--scope", "payments:read"])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"payapi_sk_[0-9A-Za-z]{46}\n", result.stdout)
    key = result.stdout.strip()
    assert api_keys.is_well_formed(key)
    rows = sql("SELECT * FROM api_keys WHERE key_hash = %s", (hashlib.sha256(key.encode()).digest(),))
    assert len(rows) == 1 and rows[0]["scopes"] == "payments:read" and rows[0]["name"] == "billing"
    assert rows[0]["expires_at"] is None and rows[0]["revoked_at"] is None
    assert key[len("payapi_sk_") + 8 :] not in json.dumps(rows, default=str)


def test_create_api_key_with_an_expiry_and_every_scope_by_default(runner, sql):
    result = runner.invoke(args=["create-api-key", "--name", "nightly", "--expires-in", "30"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    row = sql("SELECT scopes, expires_at, created_at FROM api_keys WHERE key_hash = %s", (api_keys.hash_key(key),))[0]
    assert row["scopes"].split() == list(api_keys.SCOPES)
    assert row["expires_at"] - row["created_at"] == timedelta(days=30)


@pytest.mark.parametrize(
    "args",
    [
        ["create-api-key"],
        ["create-api-key", "--name", ""],
        ["create-api-key", "--name", "x", "--scope", "admin"],
        ["create-api-key", "--name", "x", "--expires-in", "0"],
        ["create-api-key", "--name", "x", "--expires-in", "soon"],
    ],
)
def test_create_api_key_refuses_bad_options_and_makes_nothing(runner, sql, args):
    before = sql("SELECT COUNT(*) AS n FROM api_keys")[0]["n"]
    result = runner.invoke(args=args)
    assert result.exit_code == 2
    assert "payapi_sk_" not in result.output
    assert sql("SELECT COUNT(*) AS n FROM api_keys")[0]["n"] == before


def test_list_api_keys_shows_each_keys_record_and_never_the_key(runner, client):
    key = runner.invoke(args=["create-api-key", "--name", "listed", "--scope", "users:read"]).stdout.strip()
    assert client.get("/users", headers=bearer(key)).status_code == 200
    result = runner.invoke(args=["list-api-keys"])
    assert result.exit_code == 0
    header, *lines = result.output.splitlines()
    assert header.split() == ["id", "name", "prefix", "scopes", "created", "last", "used", "expires", "revoked"]
    line = next(line for line in lines if " listed " in line)
    assert key[:18] + "…" in line and key not in result.output
    assert re.search(r"users:read\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+-\s+-$", line)


def test_revoke_api_key_stops_the_key_within_the_cache_time(runner, app, database):
    key = runner.invoke(args=["create-api-key", "--name", "revoked soon"]).stdout.strip()
    client = app.test_client()
    assert client.get("/payments", headers=bearer(key)).status_code == 200
    key_id = run_sql(database, "SELECT id FROM api_keys WHERE key_hash = %s", api_keys.hash_key(key))[0]["id"]
    result = runner.invoke(args=["revoke-api-key", str(key_id)])
    assert result.exit_code == 0 and "Revoked" in result.output
    deadline = time.monotonic() + api_keys.CACHE_SECONDS + 1
    while client.get("/payments", headers=bearer(key)).status_code == 200:
        assert time.monotonic() < deadline, "a revoked key still works after the cache time"
        time.sleep(0.25)
    assert runner.invoke(args=["revoke-api-key", str(key_id)]).output.startswith(f"API key {key_id} was already")
    missing = runner.invoke(args=["revoke-api-key", "999999999"])
    assert missing.exit_code == 1 and "No API key has id 999999999" in missing.output


def test_a_revoked_key_is_refused_by_every_worker_of_the_live_server_within_10_seconds(live_server, database):
    key = make_api_key(database, name="live revoked")
    session = api.session()
    session.headers.update(bearer(key))
    for _ in range(20):  # reach every worker, so that each caches the key
        assert session.get(f"{live_server.url}/payments?limit=1").status_code == 200
    run_sql(database, "UPDATE api_keys SET revoked_at = %s WHERE key_hash = %s", utc_now(), api_keys.hash_key(key))
    time.sleep(10)
    statuses = {session.get(f"{live_server.url}/payments?limit=1").status_code for _ in range(20)}
    assert statuses == {401}


def test_an_expired_key_is_refused_at_once_even_when_cached(client, database):
    key = make_api_key(database, name="expiring")
    assert client.get("/payments", headers=bearer(key)).status_code == 200
    soon = utc_now() + timedelta(seconds=1)
    run_sql(database, "UPDATE api_keys SET expires_at = %s WHERE key_hash = %s", soon, api_keys.hash_key(key))
    time.sleep(api_keys.CACHE_SECONDS + 0.5)
    assert client.get("/payments", headers=bearer(key)).status_code == 401


def test_last_used_is_written_once_a_minute_at_most(client, database, sql):
    key = make_api_key(database, name="used")
    key_hash = api_keys.hash_key(key)
    assert sql("SELECT last_used_at FROM api_keys WHERE key_hash = %s", (key_hash,)) == [{"last_used_at": None}]
    assert client.get("/payments", headers=bearer(key)).status_code == 200
    first = sql("SELECT last_used_at FROM api_keys WHERE key_hash = %s", (key_hash,))[0]["last_used_at"]
    assert first is not None and first.second == 0 and utc_now() - first < timedelta(minutes=1)
    marker = first - timedelta(minutes=5)
    sql("UPDATE api_keys SET last_used_at = %s WHERE key_hash = %s", (marker, key_hash))
    sql("COMMIT")
    for _ in range(5):
        assert client.get("/payments", headers=bearer(key)).status_code == 200
    assert sql("SELECT last_used_at FROM api_keys WHERE key_hash = %s", (key_hash,)) == [{"last_used_at": marker}]


@pytest.fixture
def fresh_database():
    """A database of its own with the schema and no API key; dropped at the end."""
    settings = {**config_dict(), "DB_NAME": f"{SuiteConfig.DB_NAME}_first"}

    class Fresh(SuiteConfig):
        DB_NAME = settings["DB_NAME"]

    yield Fresh
    cnx = mysql.connector.connect(**connection_settings(settings, with_database=False))
    cnx.cursor().execute(f"DROP DATABASE IF EXISTS `{settings['DB_NAME']}`")
    cnx.close()


def test_init_db_on_a_new_database_prints_a_first_key_once_and_never_again(fresh_database):
    runner = create_app(fresh_database).test_cli_runner()
    first = runner.invoke(args=["init-db"])
    assert first.exit_code == 0, first.output
    keys = re.findall(r"payapi_sk_[0-9A-Za-z]{46}", first.output)
    assert len(keys) == 1
    second = runner.invoke(args=["init-db"])
    assert second.exit_code == 0 and "payapi_sk_" not in second.output
    client = create_app(fresh_database).test_client()
    assert client.get("/users", headers=bearer(keys[0])).status_code == 200
    settings = {**config_dict(), "DB_NAME": fresh_database.DB_NAME}
    assert run_sql(settings, "SELECT scopes FROM api_keys") == [{"scopes": " ".join(api_keys.SCOPES)}]


def test_a_database_without_the_api_keys_table_is_refused_as_misconfigured_until_init_db(fresh_database):
    settings = {**config_dict(), "DB_NAME": fresh_database.DB_NAME}
    init_test_db(settings)
    app = create_app(fresh_database)
    client = app.test_client()
    run_sql(settings, "DROP TABLE api_keys")
    response = client.get("/users")
    assert response.status_code == 500
    assert response.get_json()["type"] == "/problems/server-misconfigured"
    assert "Run `flask --app app init-db`" not in response.get_data(as_text=True)
    assert app.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    assert client.get("/users").status_code == 401  # the suite's key went with the table


def test_a_malformed_key_or_a_bad_checksum_costs_no_database_lookup():
    def no_database():
        raise AssertionError("looked up in the database")

    cache = api_keys.KeyCache()
    key = api_keys.new_key()
    for credential in (key[:-1] + ("A" if key[-1] != "A" else "B"), key[:-3], key + "é", "payapi_sk_" + "x" * 46):
        assert cache.lookup(no_database, credential) is None
