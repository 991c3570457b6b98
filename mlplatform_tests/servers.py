"""Real servers for integration tests: find their executables, start them on 127.0.0.1 and a free
port in their own process group, wait until they answer, and stop them with nothing left behind.

On a laptop without a server's package the test skips; in CI (`CI=true`) it fails, because
`.ci/install-system-packages` must have installed it.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip on a laptop, fail in CI: CI installs every server the suite needs."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must provide it: .ci/install-system-packages)")
    pytest.skip(reason)


def require_executable(name: str, debian_package: str, *candidates: str) -> str:
    """The path of `name` on PATH or at one of `candidates` (globs allowed)."""
    found = shutil.which(name)
    if found:
        return found
    for pattern in candidates:
        for path in sorted(glob.glob(pattern), reverse=True):
            if os.access(path, os.X_OK):
                return path
    unavailable(f"`{name}` not found; install Debian's `{debian_package}`")
    raise AssertionError("unreachable")


def free_ports(count: int) -> list[int]:
    """`count` different free ports on 127.0.0.1, held together while chosen: one at a time, the
    system may hand the same port out twice."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def free_port() -> int:
    return free_ports(1)[0]


def reset_signals() -> None:
    # A shell that started the test run in the background may ignore SIGINT/SIGTERM, and children
    # inherit that; a server that ignores SIGTERM cannot be stopped cleanly.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)


def start_process(
    command: Sequence[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> subprocess.Popen:
    """Start a server in its own session (so the whole tree can be signalled), logging to a file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
    try:
        return subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            user=user,
            start_new_session=True,
            preexec_fn=reset_signals,
        )
    finally:
        log.close()


def stop_process_group(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the whole group (again, after a grace period, to whatever is left or started
    since), then SIGKILL whatever is still there after `timeout`."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # Children may outlive the leader; the group must be empty either way. A process started
    # after the first signal gets one too: `dagster dev` restarts a code server that exits during
    # its own shutdown, and that new server would otherwise never be told to stop.
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        if not group_alive(process):
            return
        if time.monotonic() > started + 5:  # a grace period for the first signal first
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        time.sleep(0.5)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    wait_until(lambda: not group_alive(process), 10, "the killed process group to be gone")


def group_alive(process: subprocess.Popen) -> bool:
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    what: str,
    process: subprocess.Popen | None = None,
    log_path: Path | None = None,
    interval: float = 0.5,
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"{what}: the process exited with {process.returncode}\n{tail(log_path)}"
            )
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail(log_path)}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def tail(log_path: Path | None, lines: int = 40) -> str:
    if log_path is None or not log_path.exists():
        return ""
    text = log_path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    database: str

    def url(self, database: str | None = None) -> str:
        # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the platform ships psycopg2.
        name = database or self.database
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres"
        )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        connection.close()
        return name


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL cluster trusting local connections, on 127.0.0.1 and a free port."""
    initdb = require_executable("initdb", "postgresql", "/usr/lib/postgresql/*/bin/initdb")
    pg_ctl = str(Path(initdb).with_name("pg_ctl"))
    # initdb refuses to run as root: the cluster then belongs to the `postgres` system user, in a
    # folder it can reach (pytest's tmp_path is private to root).
    as_user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="mlplatform-postgres-"))
    data_dir, socket_dir, log_path = root / "data", root / "socket", root / "postgres.log"
    socket_dir.mkdir()
    if as_user:
        for path in (root, socket_dir):
            shutil.chown(path, user=as_user)
    try:
        subprocess.run(
            [initdb, "-D", str(data_dir), "--auth=trust", "-U", "mlplatform", "--encoding=UTF8"],
            check=True, capture_output=True, user=as_user, timeout=120,
        )  # fmt: skip
        port = free_port()
        options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        started = subprocess.run(
            [pg_ctl, "-D", str(data_dir), "-l", str(log_path), "-o", options, "-w", "start"],
            capture_output=True, text=True, user=as_user, timeout=120, preexec_fn=reset_signals,
        )  # fmt: skip
        assert started.returncode == 0, started.stdout + started.stderr + tail(log_path)
        try:
            yield PostgresServer("127.0.0.1", port, "mlplatform", "postgres")
        finally:
            subprocess.run(
                [pg_ctl, "-D", str(data_dir), "-m", "fast", "-w", "stop"],
                capture_output=True, user=as_user, timeout=120,
            )  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
