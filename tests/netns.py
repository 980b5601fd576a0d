"""Test-only: several "hosts" on one machine (network namespaces on one bridge) and a private PostgreSQL server.

:class:`Hosts` makes N network namespaces, each with one interface ``eth0`` at
``10.77.0.<i+1>/24``, plugged into a bridge that lives in a namespace of its own, so
no address and no packet of theirs ever reaches the machine's own network. Every name
carries a random token: parallel test workers do not collide. :class:`Postgres` runs a
throwaway cluster (``initdb`` in a temporary folder, as the ``postgres`` system user:
the server refuses to run as root) listening on one host's address, and on a Unix
socket the test itself (outside the namespaces) reads the study through.
Both need root and iproute2 (and PostgreSQL's binaries); :func:`unavailable` says
why not, for ``pytest.skip``. Closing removes everything, processes included.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TypeVar

SUBNET = "10.77.0"
DEVICE = "eth0"
PG_PORT = 5432
PG_USER = "postgres"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


def unavailable(postgres: bool = False) -> str | None:
    """Why hosts (and a PostgreSQL server) cannot be made here; None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed (.ci/run installs it)"
    probe = f"improbe{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    _ip("netns", "del", probe)
    if postgres and Postgres.bin_dir() is None:
        return "PostgreSQL's server binaries are not in /usr/lib/postgresql/*/bin (.ci/run installs postgresql)"
    if postgres and shutil.which("runuser") is None:
        return "util-linux's runuser is not installed (the server must run as the postgres user, not root)"
    if postgres and not _user_exists(PG_USER):
        return f"no {PG_USER!r} system user to run the server as (Debian's postgresql package makes it)"
    return None


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


_S = TypeVar("_S", bound="_Started")


class _Started:
    """A context manager around ``start()`` and ``close()``: a start that fails half-way is closed too."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Hosts(_Started):
    """``count`` network namespaces on one bridge: host ``i`` is ``10.77.0.<i+1>`` on ``eth0``."""

    def __init__(self, count: int) -> None:
        self.token = secrets.token_hex(3)
        self.names = [f"im{self.token}h{i}" for i in range(count)]
        self.switch = f"im{self.token}sw"

    def address(self, host: int) -> str:
        return f"{SUBNET}.{host + 1}"

    def command(self, host: int, argv: list[str]) -> list[str]:
        """``argv`` run on host ``host``."""
        return ["ip", "netns", "exec", self.names[host], *argv]

    def _run(self, *args: str) -> None:
        done = _ip(*args)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")

    def start(self) -> None:
        self._run("netns", "add", self.switch)
        self._run("-n", self.switch, "link", "add", "br0", "type", "bridge")
        self._run("-n", self.switch, "link", "set", "br0", "up")
        for i, name in enumerate(self.names):
            inside, port = f"v{self.token}h{i}", f"v{self.token}s{i}"
            self._run("netns", "add", name)
            self._run("link", "add", inside, "type", "veth", "peer", "name", port)  # in the root namespace ...
            self._run("link", "set", inside, "netns", name)  # ... for a moment, then moved out of it
            self._run("link", "set", port, "netns", self.switch)
            self._run("-n", self.switch, "link", "set", port, "master", "br0", "up")
            self._run("-n", name, "link", "set", inside, "name", DEVICE)
            self._run("-n", name, "addr", "add", f"{self.address(i)}/24", "dev", DEVICE)
            self._run("-n", name, "link", "set", DEVICE, "up")
            self._run("-n", name, "link", "set", "lo", "up")

    def close(self) -> None:
        """Kill every process left in the namespaces, then delete them (their interfaces go with them)."""
        for name in [*self.names, self.switch]:
            pids = _ip("netns", "pids", name).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            _ip("netns", "del", name)


class Postgres(_Started):
    """A private PostgreSQL cluster on host ``host`` of ``hosts``, trusting that network (a test database)."""

    def __init__(self, hosts: Hosts, host: int) -> None:
        self.hosts, self.host = hosts, host
        self.folder = Path(tempfile.mkdtemp(prefix="ignite-mnist-pg-"))  # not under pytest's root-only tmp

    @staticmethod
    def bin_dir() -> Path | None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
        return Path(found[-1]).parent if found else None

    @property
    def url(self) -> str:
        """The URL workers on the hosts use: over the namespaces' network."""
        return f"postgresql://{PG_USER}@{self.hosts.address(self.host)}:{PG_PORT}/postgres"

    @property
    def local_url(self) -> str:
        """The URL the test uses from outside the namespaces: the server's Unix socket."""
        return f"postgresql://{PG_USER}@/postgres?host={self.folder}&port={PG_PORT}"

    def _as_postgres(self, argv: list[str], on_host: bool = False) -> None:
        command = ["runuser", "-u", PG_USER, "--", *argv]
        done = subprocess.run(self.hosts.command(self.host, command) if on_host else command,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])}: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def start(self) -> None:
        bin_dir = self.bin_dir()
        assert bin_dir is not None
        shutil.chown(self.folder, PG_USER)
        data = self.folder / "data"
        self._as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8",
                           "--no-sync"])
        with open(data / "pg_hba.conf", "a", encoding="utf-8") as hba:
            hba.write(f"host all all {SUBNET}.0/24 trust\n")
        options = (f"-c listen_addresses={self.hosts.address(self.host)} -p {PG_PORT} "
                   f"-c unix_socket_directories={self.folder} -c fsync=off")
        self._as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(self.folder / "server.log"),
                           "-o", options, "-w", "-t", "60", "start"], on_host=True)

    def close(self) -> None:
        """Stop the server at once (the namespace's teardown kills anything left), then remove its files."""
        pid_file = self.folder / "data" / "postmaster.pid"
        if pid_file.is_file():
            with contextlib.suppress(ProcessLookupError, ValueError, IndexError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)  # immediate shutdown
            deadline = time.monotonic() + 10
            while pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.is_file() else ""
