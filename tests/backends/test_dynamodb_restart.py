"""DynamoDB Local killed in the middle of insert_many of 2,000 items, then restarted on its data.

The server keeps its tables on disk (``-dbPath``), so it should come back with every write it
confirmed (it has been seen to lose a few under load: then the test is an expected failure that
names them). ``BackendUnavailable`` must say which keys are confirmed written (each of them is
then stored), which were in flight and which were never sent; rerunning the same insert_many
reports the stored ones as ``DuplicateKey`` and writes the rest: exactly 2,000 items, none lost,
none written twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import odm
from odm import Model, fields

from .. import servers

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402

#: 80 batches of 25: the server is killed once a fifth are stored, with most still to send.
TOTAL = 2000


class Parcel(Model):
    k = fields.String(required=True)
    n = fields.Integer(required=True)
    body = fields.String()

    class Meta:
        name = "restart_parcels"
        hash_key = "k"


class DiskDynamo:
    """DynamoDB Local on a data directory, killed (SIGKILL) and restarted on the same port."""

    def __init__(self, data: Path) -> None:
        self.argv = servers.dynamodb_local_argv("-dbPath", str(data), "-port")
        self.data = data
        self.port = servers.free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.data / "server.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen([*self.argv, str(self.port)], stdout=out, stderr=subprocess.STDOUT,
                                         cwd=self.data, stdin=subprocess.DEVNULL, start_new_session=True)
        servers.wait_for_port(self.port, self.proc, 60, "dynamodb-local (disk)", log)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DiskDynamo]:
    if os.environ.get("ODM_TEST_DYNAMODB_ENDPOINT"):
        pytest.skip("this test starts and kills its own DynamoDB Local; ODM_TEST_DYNAMODB_ENDPOINT is set")
    disk = DiskDynamo(tmp_path)
    disk.start()
    yield disk
    disk.kill()


def _registry(endpoint: str) -> odm.Registry:
    return odm.Registry("dynamodb", endpoint=endpoint, awsRegion="us-east-1", awsSecretKeyId="test",
                        awsSecretAccessKey="test")


def _stored(endpoint: str) -> int:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))
    try:
        return int(client.scan(TableName="restart_parcels", Select="COUNT")["Count"])
    finally:
        client.close()


def test_killed_server_mid_insert_many_loses_nothing_and_rerun_converges(server: DiskDynamo) -> None:
    reg = _registry(server.endpoint)
    reg.register(Parcel)
    reg.sync()
    items = [Parcel(k=f"p{i:05d}", n=i, body="x" * 200) for i in range(TOTAL)]
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            Parcel.insert_many(items)
        except odm.ODMError as exc:
            outcome["error"] = exc

    writer = threading.Thread(target=run)
    writer.start()
    deadline = time.monotonic() + 60
    while _stored(server.endpoint) < TOTAL // 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill()
    writer.join(60)
    assert not writer.is_alive()
    error = outcome.get("error")
    assert isinstance(error, odm.BackendUnavailable), f"insert_many finished before the server was killed: {error!r}"
    written: list[tuple[Any, ...]] = error.written  # type: ignore[attr-defined]
    doubt: list[tuple[Any, ...]] = error.unconfirmed  # type: ignore[attr-defined]
    unwritten: list[tuple[Any, ...]] = error.unwritten  # type: ignore[attr-defined]
    assert 0 < len(written) < TOTAL and len(written) + len(doubt) + len(unwritten) == TOTAL
    assert f"{len(written)} are confirmed written: 'p00000', 'p00001'" in str(error)
    assert "not written" in str(error) or "not confirmed" in str(error)

    server.start()  # same data directory
    stored = {p.k for p in Parcel.query()}
    assert stored <= {k for k, in written + doubt}  # nothing stored that was never sent

    with pytest.raises(odm.DuplicateKey) as info:
        Parcel.insert_many(items)
    assert sorted(info.value.failed) == sorted((k,) for k in stored)  # type: ignore[attr-defined]
    assert Parcel.query().count() == TOTAL
    assert sorted(p.n for p in Parcel.query()) == list(range(TOTAL))
    reg.close()

    # Every write reported as confirmed is there, unless the server itself lost it: DynamoDB Local
    # has come back from SIGKILL without writes it had acknowledged (seen once in a loaded full
    # run, and by the odm copy restart test), which no client can prevent; that is an expected
    # failure naming the keys, not a pass. The rerun above converged either way.
    lost = sorted({k for k, in written} - stored)
    if lost:
        pytest.xfail(f"DynamoDB Local lost {len(lost)} write(s) it had confirmed before SIGKILL: {lost[:5]}")
