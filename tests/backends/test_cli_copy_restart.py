"""``odm copy`` into a DynamoDB Local that is killed midway, then restarted on its data: the copy
fails with one line, and the same command run again ends with exactly the source's items."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_dynamodb_restart import DiskDynamo, _registry

pytest.importorskip("boto3")

ODM = str(Path(sys.executable).with_name("odm"))
TOTAL = 3000
MODELS = ("from odm import Model, fields\n\n\nclass Crate(Model):\n    k = fields.String(required=True)\n"
          "    n = fields.Integer()\n    body = fields.String()\n\n"
          "    class Meta:\n        name = 'cli_restart_crates'\n        hash_key = 'k'\n")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DiskDynamo]:
    if os.environ.get("ODM_TEST_DYNAMODB_ENDPOINT"):
        pytest.skip("this test starts and kills its own DynamoDB Local; ODM_TEST_DYNAMODB_ENDPOINT is set")
    data = tmp_path / "dynamo"
    data.mkdir()
    disk = DiskDynamo(data)
    disk.start()
    yield disk
    disk.kill()


def test_a_copy_whose_server_dies_midway_resumes_to_exactly_the_source(server: DiskDynamo, tmp_path: Path) -> None:
    (tmp_path / "crates.py").write_text(MODELS)
    source, target = tmp_path / "a.json", tmp_path / "b.json"
    source.write_text(json.dumps({"database": {"dbName": "sqlite", "dbInfo": {"path": str(tmp_path / "a.db")}}}))
    target.write_text(json.dumps({"database": {"dbName": "dynamodb", "dbInfo": {
        "endpoint": server.endpoint, "awsRegion": "us-east-1", "awsSecretKeyId": "test", "awsSecretAccessKey": "test"}}}))
    code = (f"import odm, crates\nwith odm.Registry.from_file({str(source)!r}) as reg:\n    reg.register(crates.Crate)\n"
            f"    reg.sync()\n    crates.Crate.insert_many([crates.Crate(k='c%05d' % i, n=i, body='x' * 100) "
            f"for i in range({TOTAL})])\n")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120)
    argv = [ODM, "copy", "--from", str(source), "--to", str(target), "crates", "--batch-size", "25",
            "--progress-interval", "0"]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = 0
    while seen < 10:  # ten batches written, more than a hundred to go
        line = proc.stderr.readline()
        assert line, "the copy ended before the server could be stopped"
        seen += "items (" in line
    server.kill()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-800:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("odm: ") and "run the same command again to resume" in last and "Traceback" not in err
    copied = json.loads((tmp_path / "b.json.odm-copy.json").read_text())["models"]["Crate"]["copied"]
    assert 250 <= copied < TOTAL

    server.start()  # on the same data: DynamoDB Local may come back without the last writes it confirmed
    done = subprocess.run(argv[:-4] + ["--batch-size", "500"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-800:]
    assert f"Crate: {TOTAL} in source, {TOTAL} in target: OK" in done.stdout
    assert "resuming after" in done.stderr or "copying it again from the start" in done.stderr
    with _registry(server.endpoint) as reg:
        crate = _load(tmp_path / "crates.py").Crate  # type: ignore[attr-defined]
        reg.register(crate)
        stored = sorted((c.k, c.n) for c in crate.query())
    assert stored == [(f"c{i:05d}", i) for i in range(TOTAL)]  # none lost, none doubled


def _load(path: Path) -> object:
    import importlib.util

    spec = importlib.util.spec_from_file_location("crates", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
