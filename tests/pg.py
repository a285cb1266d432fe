"""A throw-away PostgreSQL server for the tests: installed from Debian's packages when it is
missing (CI runs as root), started as the unprivileged ``postgres`` user (the server refuses
root) on 127.0.0.1 and a free port, in a temporary directory, with password authentication."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PASSWORD = "s3cret-Attnas-pw"  # the tests grep every output for this string


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def ensure_installed() -> Path:
    bindir = _bindir()
    if bindir is None and os.geteuid() == 0:
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "postgresql"],
            check=True,
            env=env,
            capture_output=True,
        )
        bindir = _bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL server binaries not found and cannot install them (not root)"
        )
    return bindir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


@contextmanager
def postgres_server() -> Iterator[dict[str, str]]:
    bindir = ensure_installed()
    root = Path(tempfile.mkdtemp(prefix="attnas-pg-"))
    data, pwfile = root / "data", root / "pw"
    pwfile.write_text(PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    port = _free_port()
    _as_server_user(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "attnas",
            f"--pwfile={pwfile}",
            "-A",
            "scram-sha-256",
            "--no-sync",
        ]
    )
    _as_server_user(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        ]
    )
    try:
        env = os.environ | {"PGPASSWORD": PASSWORD}
        subprocess.run(
            [
                str(bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "attnas",
                "attnas",
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        yield {
            "url": f"postgresql+psycopg2://attnas:{PASSWORD}@127.0.0.1:{port}/attnas",
            "url_without_password": f"postgresql+psycopg2://attnas@127.0.0.1:{port}/attnas",
            "port": str(port),
        }
    finally:
        _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)
