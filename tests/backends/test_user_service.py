"""The example user service (examples/user_service) as its clients see it, on every backend.

Each backend gets one real service process (``python -m examples.user_service`` on uvicorn, on a
free port, with a seed-format config written here), driven through HTTP with httpx and stopped
by its PID. The token model has a TTL: on DynamoDB the service gets a DynamoDB Local of its own,
so its TTL table never counts against the shared server's limit (docs/testing.md).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .. import servers

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

SERVICE_BACKENDS = ["sqlite", "postgres", "mongodb", "dynamodb"]
#: The configured token lifetime; a client may ask for less, never more.
TOKEN_TTL = 600
#: Racing clients in the concurrency tests.
RACERS = 6
STARTUP_TIMEOUT = 180.0  # import, connect and sync on two shared cores (DynamoDB GSIs take longest)


def database_config(backend: str, tmp: Path, stack: list[servers.Process], own: list[servers.Process],
                    cleanups: list[Callable[[], None]]) -> dict[str, Any]:
    """The ``database`` object for ``backend``, on a database (file, schema, prefix) of this run alone."""
    run = uuid.uuid4().hex[:8]
    if backend == "sqlite":
        return {"dbName": "sqlite", "dbInfo": {"path": "users.db"}}  # relative: beside the config file
    if backend == "postgres":
        db = servers.PostgresDatabase()
        cleanups.append(db.drop)
        return {"dbName": "postgres", "dbInfo": {"dsn": db.dsn}}
    if backend == "mongodb":
        return {"dbName": "mongodb", "dbInfo": {"uri": servers.mongodb_uri(stack), "database": f"user_service_{run}"}}
    prefix = f"us{run}_"
    endpoint = os.environ.get("ODM_TEST_DYNAMODB_ENDPOINT")
    if not endpoint or servers.dynamodb_local_installed():
        endpoint = servers.start_dynamodb_local(own)  # one for this module: its TTL table costs the suite's server nothing
    else:  # only the given server: the tokens table must fit under its TTL limit
        boto3 = pytest.importorskip("boto3")
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        try:
            servers.check_ttl_room(client, f"{prefix}tokens")
        finally:
            client.close()
    return {"dbName": "dynamodb", "dbInfo": {"endpoint": endpoint, "awsRegion": "us-east-1", "awsSecretKeyId": "test",
                                             "awsSecretAccessKey": "test", "tablePrefix": prefix}}


class ServiceProcess:
    """``python -m examples.user_service`` on a free port, stopped by its PID (SIGTERM to its group)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.port = servers.free_port()
        self.log = log
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("ODM_DB_NAME", "ODM_DB_INFO", "ODM_CURSOR_SECRET", "USER_SERVICE_CONFIG")}
        with log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "examples.user_service", "--config", str(config), "--port", str(self.port)],
                                         cwd=servers.ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def wait_ready(self, client: Any) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the user service exited with code {self.proc.returncode}:\n{self.log.read_text()[-3000:]}", pytrace=False)
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"the user service did not answer within {STARTUP_TIMEOUT:.0f}s:\n{self.log.read_text()[-3000:]}", pytrace=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # uvicorn shuts down: the lifespan closes the registry
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)


@pytest.fixture(scope="module", params=SERVICE_BACKENDS)
def api(request: pytest.FixtureRequest, server_stack: list[servers.Process],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An httpx client of a running service on the backend under test (one service per backend)."""
    tmp = tmp_path_factory.mktemp(f"user-service-{request.param}")
    own: list[servers.Process] = []
    cleanups: list[Callable[[], None]] = []
    service = None
    try:
        database = database_config(request.param, tmp, server_stack, own, cleanups)
        config = tmp / "config.json"
        config.write_text(json.dumps({"service": {"name": "user"}, "tokens": {"ttl": TOKEN_TTL}, "database": database}))
        service = ServiceProcess(config, tmp / "service.log")
        with httpx.Client(base_url=service.url, timeout=60) as client:
            service.wait_ready(client)
            yield client
    finally:
        if service is not None:
            service.stop()
        for proc in own:
            proc.stop()
        for cleanup in cleanups:
            cleanup()
    if request.param == "sqlite":
        assert (tmp / "users.db").exists()  # the relative path was read from the config's folder


def email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def register(api: Any, **body: Any) -> dict[str, Any]:
    body = {"email": email(), "password": "correct horse", **body}
    answer = api.post("/users", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def login(api: Any, user: dict[str, Any], password: str = "correct horse") -> dict[str, str]:
    """The Authorization header of a fresh token of ``user``."""
    answer = api.post("/tokens", json={"email": user["email"], "password": password})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def signed_up(api: Any, **body: Any) -> tuple[dict[str, Any], dict[str, str]]:
    user = register(api, **body)
    return user, login(api, user)


def test_register_stores_the_user_without_ever_returning_the_password(api: Any) -> None:
    address = email()
    answer = api.post("/users", json={"email": address, "password": "s3cret-passw0rd", "fullname": "Ann"})
    assert answer.status_code == 201, answer.text
    user = answer.json()
    assert {k: user[k] for k in ("email", "fullname", "roles", "active", "version")} == {
        "email": address, "fullname": "Ann", "roles": [], "active": True, "version": 1}
    assert answer.headers["location"] == f"/users/{user['id']}" and answer.headers["etag"] == '"1"'
    auth = login(api, user, "s3cret-passw0rd")
    fetched = api.get(f"/users/{user['id']}", headers=auth)
    assert fetched.status_code == 200 and fetched.json() == user
    for text in (answer.text, fetched.text, api.get("/users", params={"limit": 100}, headers=auth).text):
        assert "s3cret" not in text and "password" not in text and "scrypt" not in text


def test_a_client_cannot_choose_its_roles_or_active_flag(api: Any) -> None:
    for field, value in (("roles", ["admin"]), ("active", True)):
        answer = api.post("/users", json={"email": email(), "password": "correct horse", field: value})
        assert answer.status_code == 422 and answer.json()["fields"] == {field: ["Unknown field."]}, answer.text
    user, auth = signed_up(api)
    for field, value in (("roles", ["admin"]), ("active", False)):
        answer = api.patch(f"/users/{user['id']}", json={field: value}, headers={**auth, "If-Match": '"1"'})
        assert answer.status_code == 422 and answer.json()["fields"] == {field: ["Unknown field."]}, answer.text
    stored = api.get(f"/users/{user['id']}", headers=auth).json()
    assert stored["roles"] == [] and stored["active"] is True and stored["version"] == 1


def test_only_the_user_can_change_or_delete_their_account(api: Any) -> None:
    victim, victim_auth = signed_up(api, fullname="Victim")
    _, attacker_auth = signed_up(api)
    path = f"/users/{victim['id']}"
    takeover = {"password": "attacker's password", "current_password": "correct horse", "fullname": "Owned"}
    for headers in ({}, {"Authorization": "Bearer made-up"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        answer = api.patch(path, json=takeover, headers={**headers, "If-Match": '"1"'})
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer" and "token" in answer.json()["error"]
        assert api.delete(path, headers=headers).status_code == 401
    forbidden = api.patch(path, json=takeover, headers={**attacker_auth, "If-Match": '"1"'})
    assert forbidden.status_code == 403 and "only their own" in forbidden.json()["error"]
    assert api.delete(path, headers=attacker_auth).status_code == 403
    assert api.post("/tokens", json={"email": victim["email"], "password": "attacker's password"}).status_code == 401
    stored = api.get(path, headers=victim_auth)
    assert stored.status_code == 200 and stored.json()["fullname"] == "Victim" and stored.json()["version"] == 1
    own = api.patch(path, json={"fullname": "Still me"}, headers={**victim_auth, "If-Match": '"1"'})
    assert own.status_code == 200 and own.json()["fullname"] == "Still me"


def test_reading_users_takes_a_token_and_shows_others_only_their_name(api: Any) -> None:
    other = register(api, fullname="Other")
    me, auth = signed_up(api, fullname="Me")
    assert api.get("/users").status_code == 401
    assert api.get(f"/users/{other['id']}").status_code == 401
    seen = api.get(f"/users/{other['id']}", headers=auth)
    assert seen.status_code == 200 and seen.json() == {"id": other["id"], "fullname": "Other"} and "etag" not in seen.headers
    mine = api.get(f"/users/{me['id']}", headers=auth)
    assert mine.json()["email"] == me["email"] and mine.headers["etag"] == '"1"'
    page = api.get("/users", params={"limit": 100}, headers=auth)
    assert page.status_code == 200 and all(set(u) == {"id", "fullname"} for u in page.json()["items"])
    assert other["email"] not in page.text and me["email"] not in page.text


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), [
    ("GET", "/users?limit=%C2%B2", None, {}, 422),  # "²".isdigit() is True; int("²") raises
    ("GET", "/users?limit=" + "9" * 5000, None, {}, 422),  # int() refuses more than 4300 digits
    ("GET", "/users?limit=-1", None, {}, 422),
    ("GET", "/users?limit=3&cursor=" + "x" * 3000, None, {}, 400),
    ("GET", "/users?limit=3&cursor=%ED%A0%80", None, {}, 400),
    ("GET", "/users/" + "a" * 3000, None, {}, 404),
    ("GET", "/users/a%00b", None, {}, 422),
    ("PATCH", "/users/{me}", rb'{"version": "\u00b2", "fullname": "x"}', {}, 422),
    ("PATCH", "/users/{me}", rb'{"fullname": "x"}', {"If-Match": b'"\xb2"'}, 422),
    ("PATCH", "/users/{me}", rb'{"fullname": "x"}', {"If-Match": "junk"}, 422),
    ("PATCH", "/users/{me}", rb'{"version": 1' + b"0" * 40 + b', "fullname": "x"}', {}, 422),
    ("PATCH", "/users/{me}", rb'{"version": 1, "fullname": "\ud800x"}', {}, 422),
    ("PATCH", "/users/{me}", rb'{"version": 1, "fullname": "' + b"x" * 100_000 + b'"}', {}, 413),
    ("POST", "/users", rb'{"email": "a@example.com", "password": "\ud800xxxxxxxx"}', {}, 422),
    ("POST", "/users", b"[" * 60_000, {}, 422),  # nested deeper than json.loads can recurse
    ("POST", "/users", rb'{"email": "a@example.com", "password": "' + b"x" * 100_000 + b'"}', {}, 413),
    ("POST", "/users", rb'{"email": "' + b"a" * 300 + b'@example.com", "password": "xxxxxxxxxx"}', {}, 422),
    ("POST", "/tokens", rb'{"email": "a@example.com", "password": "\ud800xxxxxxxx"}', {}, 422),
    ("POST", "/tokens", rb'{"email": "a@example.com", "password": "' + b"x" * 10_000 + b'"}', {}, 422),
    ("POST", "/tokens", rb'{"email": "\udfffa@example.com", "password": "xxxxxxxxxx"}', {}, 422),
    ("POST", "/tokens", b'{"email": "a@example.com", "password": "xxxxxxxxxx", "ttl": 1' + b"0" * 5000 + b'}', {}, 422),
])
def test_hostile_input_is_a_4xx_with_a_json_error(api: Any, method: str, path: str, body: bytes | None,
                                                  headers: dict[str, Any], status: int) -> None:
    me, auth = signed_up(api)
    answer = api.request(method, path.replace("{me}", me["id"]), content=body,
                         headers={**auth, "content-type": "application/json", **headers})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]
    assert api.get(f"/users/{me['id']}", headers=auth).json()["version"] == 1  # nothing was changed


def test_a_taken_email_is_409_even_when_registrations_race(api: Any) -> None:
    first = register(api)
    again = api.post("/users", json={"email": first["email"], "password": "another password"})
    assert again.status_code == 409 and first["email"] in again.json()["error"]

    address = email()  # racing twins pass the service's own check: the backend's unique index decides
    with ThreadPoolExecutor(RACERS) as pool:
        answers = list(pool.map(lambda _: api.post("/users", json={"email": address, "password": "correct horse"}), range(RACERS)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * (RACERS - 1), [a.text for a in answers]
    assert all("error" in a.json() for a in answers if a.status_code == 409)


def test_an_invalid_body_is_422_with_the_field_errors(api: Any) -> None:
    answer = api.post("/users", json={"email": "not-an-email", "password": "short", "version": 7})
    assert answer.status_code == 422
    fields = answer.json()["fields"]
    assert fields["email"] == ["Not a valid email address."]
    assert fields["password"] == ["Length must be between 8 and 128."]
    assert fields["version"] == ["Unknown field."]  # clients do not choose versions, ids or hashes
    missing = api.post("/users", json={"fullname": 3})
    assert missing.status_code == 422 and set(missing.json()["fields"]) == {"email", "password", "fullname"}
    for body in (b"{not json", b"[1, 2]"):
        bad = api.post("/users", content=body, headers={"content-type": "application/json"})
        assert bad.status_code == 422 and "_schema" in bad.json()["fields"]


def test_fetching_an_unknown_user_is_404(api: Any) -> None:
    answer = api.get(f"/users/{uuid.uuid4()}", headers=signed_up(api)[1])
    assert answer.status_code == 404 and "No User" in answer.json()["error"]


def test_listing_every_page_shows_each_user_exactly_once(api: Any) -> None:
    mine = {register(api)["id"] for _ in range(6)}
    me, auth = signed_up(api)
    mine.add(me["id"])
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        page = api.get("/users", params={"limit": 3, **({"cursor": cursor} if cursor else {})}, headers=auth)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 3
        seen.extend(u["id"] for u in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and mine <= set(seen)
    assert api.get("/users", params={"limit": 0}, headers=auth).status_code == 422
    assert api.get("/users", params={"limit": "ten"}, headers=auth).json()["fields"]["limit"]
    first = api.get("/users", params={"limit": 1}, headers=auth).json()["next_cursor"]
    tampered = api.get("/users", params={"limit": 3, "cursor": "x" + (first or "")}, headers=auth)
    assert tampered.status_code == 400 and "cursor" in tampered.json()["error"]


def test_updates_of_one_version_race_and_exactly_one_wins(api: Any) -> None:
    user, auth = signed_up(api, fullname="Start")
    path = f"/users/{user['id']}"

    def rename(i: int) -> Any:
        return api.patch(path, json={"fullname": f"Racer {i}"}, headers={**auth, "If-Match": '"1"'})

    with ThreadPoolExecutor(RACERS) as pool:
        answers = list(pool.map(rename, range(RACERS)))
    assert sorted(a.status_code for a in answers) == [200] + [409] * (RACERS - 1), [a.text for a in answers]
    winner = next(a for a in answers if a.status_code == 200).json()
    stored = api.get(path, headers=auth)
    assert stored.json()["version"] == 2 and stored.json()["fullname"] == winner["fullname"] and stored.headers["etag"] == '"2"'
    loser = next(a for a in answers if a.status_code == 409).json()
    assert "version" in loser["error"]

    stale = api.patch(path, json={"fullname": "Late", "version": 1}, headers=auth)  # the version may come in the body
    assert stale.status_code == 409 and api.get(path, headers=auth).json()["fullname"] == winner["fullname"]
    fresh = api.patch(path, json={"fullname": "Next", "version": 2}, headers=auth)
    assert fresh.status_code == 200 and fresh.json()["version"] == 3
    unguarded = api.patch(path, json={"fullname": "Blind"}, headers=auth)
    assert unguarded.status_code == 428 and "If-Match" in unguarded.json()["error"]
    invalid = api.patch(path, json={"roles": "admin", "email": email()}, headers={**auth, "If-Match": '"3"'})
    assert invalid.status_code == 422 and set(invalid.json()["fields"]) == {"roles", "email"}


def test_a_token_is_accepted_until_it_expires(api: Any) -> None:
    user = register(api)
    credentials = {"email": user["email"], "password": "correct horse"}
    assert api.post("/tokens", json={**credentials, "password": "wrong horse"}).status_code == 401
    assert api.post("/tokens", json={"email": email(), "password": "correct horse"}).status_code == 401
    assert api.post("/tokens", json={"email": user["email"]}).json()["fields"] == {"password": ["Missing data for required field."]}

    lasting = api.post("/tokens", json={**credentials, "ttl": 10 * TOKEN_TTL})  # capped at the configured TTL
    assert lasting.status_code == 201
    expires = dt.datetime.fromisoformat(lasting.json()["expires_at"])
    assert expires <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=TOKEN_TTL)
    me = api.get("/me", headers={"Authorization": f"Bearer {lasting.json()['token']}"})
    assert me.status_code == 200 and me.json()["id"] == user["id"]

    short = api.post("/tokens", json={**credentials, "ttl": 1}).json()
    expiry = dt.datetime.fromisoformat(short["expires_at"])
    time.sleep(max(0.0, (expiry - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.2)  # waits for expiry, times nothing
    expired = api.get("/me", headers={"Authorization": f"Bearer {short['token']}"})
    assert expired.status_code == 401 and "expired" in expired.json()["error"]
    expired_patch = api.patch(f"/users/{user['id']}", json={"fullname": "X"}, headers={"Authorization": f"Bearer {short['token']}", "If-Match": '"1"'})
    assert expired_patch.status_code == 401
    assert api.delete(f"/users/{user['id']}", headers={"Authorization": f"Bearer {short['token']}"}).status_code == 401
    assert api.get("/me", headers={"Authorization": f"Bearer {lasting.json()['token']}"}).status_code == 200
    assert api.get("/me", headers={"Authorization": "Bearer made-up"}).status_code == 401
    assert api.get("/me").status_code == 401

    owner = {"Authorization": f"Bearer {lasting.json()['token']}", "If-Match": '"1"'}
    alone = api.patch(f"/users/{user['id']}", json={"password": "a new password"}, headers=owner)  # a stolen token is not enough
    assert alone.status_code == 422 and alone.json()["fields"] == {"current_password": ["Send the current password with a new one."]}
    wrong = api.patch(f"/users/{user['id']}", json={"password": "a new password", "current_password": "wrong horse"}, headers=owner)
    assert wrong.status_code == 403 and "current_password" in wrong.json()["error"]
    changed = api.patch(f"/users/{user['id']}", json={"password": "a new password", "current_password": "correct horse"}, headers=owner)
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert api.post("/tokens", json=credentials).status_code == 401
    assert api.post("/tokens", json={**credentials, "password": "a new password"}).status_code == 201


def test_a_deleted_user_is_gone_with_its_tokens(api: Any) -> None:
    user, auth = signed_up(api)
    _, other = signed_up(api)
    path = f"/users/{user['id']}"
    assert api.delete(path, headers=auth).status_code == 204
    assert api.get(path, headers=other).status_code == 404
    assert api.delete(path, headers=auth).status_code == 401  # its token went with it
    assert api.get("/me", headers=auth).status_code == 401
    assert api.post("/tokens", json={"email": user["email"], "password": "correct horse"}).status_code == 401
    again = api.post("/users", json={"email": user["email"], "password": "correct horse"})  # the email is free again
    assert again.status_code == 201 and again.json()["id"] != user["id"]


def test_a_lost_database_is_a_generic_503_and_the_detail_is_logged(server_stack: list[servers.Process], tmp_path: Path) -> None:
    """PostgreSQL only: its database is dropped under the running service, whose errors then name the server."""
    db = servers.PostgresDatabase()
    service = None
    try:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"database": {"dbName": "postgres", "dbInfo": {"dsn": db.dsn}}}))
        service = ServiceProcess(config, tmp_path / "service.log")
        with httpx.Client(base_url=service.url, timeout=60) as api:
            service.wait_ready(api)
            user, auth = signed_up(api)
            db.admin.execute(f'DROP DATABASE "{db.name}" WITH (FORCE)')  # closes the service's connections too
            answer = api.get("/me", headers=auth)
            registering = api.post("/users", json={"email": email(), "password": "correct horse"})
        for failed in (answer, registering):
            assert failed.status_code == 503, failed.text
            body = failed.json()
            assert body["error"].startswith("The database is unavailable") and body["request_id"] in body["error"]
            for detail in (db.name, "127.0.0.1", "5432", "postgres", "Backend", "asyncpg"):
                assert detail not in failed.text
        service.stop()
        log = (tmp_path / "service.log").read_text()
        assert all(f"request {r.json()['request_id']}: " in log for r in (answer, registering))
        assert db.name in log  # the operator sees which database failed
    finally:
        if service is not None:
            service.stop()
        db.drop()
