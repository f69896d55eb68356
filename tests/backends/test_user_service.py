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
    if endpoint:  # a server shared with the suite: the tokens table must fit under its TTL limit
        boto3 = pytest.importorskip("boto3")
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        try:
            servers.check_ttl_room(client, f"{prefix}tokens")
        finally:
            client.close()
    else:
        endpoint = servers.dynamodb_endpoint(own)  # starts one for this module
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


def test_register_stores_the_user_without_ever_returning_the_password(api: Any) -> None:
    address = email()
    answer = api.post("/users", json={"email": address, "password": "s3cret-passw0rd", "fullname": "Ann", "roles": ["admin"]})
    assert answer.status_code == 201, answer.text
    user = answer.json()
    assert {k: user[k] for k in ("email", "fullname", "roles", "active", "version")} == {
        "email": address, "fullname": "Ann", "roles": ["admin"], "active": True, "version": 1}
    assert answer.headers["location"] == f"/users/{user['id']}" and answer.headers["etag"] == '"1"'
    fetched = api.get(f"/users/{user['id']}")
    assert fetched.status_code == 200 and fetched.json() == user
    for text in (answer.text, fetched.text, api.get("/users", params={"limit": 100}).text):
        assert "s3cret" not in text and "password" not in text and "scrypt" not in text


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
    answer = api.get(f"/users/{uuid.uuid4()}")
    assert answer.status_code == 404 and "No User" in answer.json()["error"]


def test_listing_every_page_shows_each_user_exactly_once(api: Any) -> None:
    mine = {register(api)["id"] for _ in range(7)}
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        page = api.get("/users", params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 3
        seen.extend(u["id"] for u in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and mine <= set(seen)
    assert api.get("/users", params={"limit": 0}).status_code == 422
    assert api.get("/users", params={"limit": "ten"}).json()["fields"]["limit"]
    tampered = api.get("/users", params={"limit": 3, "cursor": "x" + (api.get("/users", params={"limit": 1}).json()["next_cursor"] or "")})
    assert tampered.status_code == 400 and "cursor" in tampered.json()["error"]


def test_updates_of_one_version_race_and_exactly_one_wins(api: Any) -> None:
    user = register(api, fullname="Start")
    path = f"/users/{user['id']}"

    def rename(i: int) -> Any:
        return api.patch(path, json={"fullname": f"Racer {i}"}, headers={"If-Match": '"1"'})

    with ThreadPoolExecutor(RACERS) as pool:
        answers = list(pool.map(rename, range(RACERS)))
    assert sorted(a.status_code for a in answers) == [200] + [409] * (RACERS - 1), [a.text for a in answers]
    winner = next(a for a in answers if a.status_code == 200).json()
    stored = api.get(path)
    assert stored.json()["version"] == 2 and stored.json()["fullname"] == winner["fullname"] and stored.headers["etag"] == '"2"'
    loser = next(a for a in answers if a.status_code == 409).json()
    assert "version" in loser["error"]

    stale = api.patch(path, json={"fullname": "Late", "version": 1})  # the version may come in the body
    assert stale.status_code == 409 and api.get(path).json()["fullname"] == winner["fullname"]
    fresh = api.patch(path, json={"fullname": "Next", "version": 2})
    assert fresh.status_code == 200 and fresh.json()["version"] == 3
    unguarded = api.patch(path, json={"fullname": "Blind"})
    assert unguarded.status_code == 428 and "If-Match" in unguarded.json()["error"]
    invalid = api.patch(path, json={"roles": "admin", "email": email()}, headers={"If-Match": '"3"'})
    assert invalid.status_code == 422 and set(invalid.json()["fields"]) == {"roles", "email"}
    assert api.patch(f"/users/{uuid.uuid4()}", json={"fullname": "X"}, headers={"If-Match": '"1"'}).status_code == 404


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
    assert api.get("/me", headers={"Authorization": f"Bearer {lasting.json()['token']}"}).status_code == 200
    assert api.get("/me", headers={"Authorization": "Bearer made-up"}).status_code == 401
    assert api.get("/me").status_code == 401

    changed = api.patch(f"/users/{user['id']}", json={"password": "a new password"}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200
    assert api.post("/tokens", json=credentials).status_code == 401
    assert api.post("/tokens", json={**credentials, "password": "a new password"}).status_code == 201


def test_a_deleted_user_is_gone_with_its_tokens(api: Any) -> None:
    user = register(api)
    token = api.post("/tokens", json={"email": user["email"], "password": "correct horse"}).json()["token"]
    path = f"/users/{user['id']}"
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404
    assert api.delete(path).status_code == 404
    assert api.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert api.post("/tokens", json={"email": user["email"], "password": "correct horse"}).status_code == 401
    again = api.post("/users", json={"email": user["email"], "password": "correct horse"})  # the email is free again
    assert again.status_code == 201 and again.json()["id"] != user["id"]
