"""A local PostgreSQL server for studies and tracking: `make db` / `make db-stop`, and the
throwaway instances of the tests.

    python -m lit_mia.sweep.pgserver start [--dir .pgdata] [--port 5433]
    python -m lit_mia.sweep.pgserver stop  [--dir .pgdata]

`start` runs initdb once (superuser `postgres`, trust authentication: the server listens on
127.0.0.1 only, and its socket lives in the data folder), starts the server with pg_ctl and
creates the databases `optuna` (studies) and `mlflow` (the tracking server's backend). The
server binaries come from PATH or /usr/lib/postgresql/<version>/bin (Debian's package).
initdb and the server refuse to run as root: as root they run as the `postgres` user.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lit_mia.errors import ConfigError

DATABASES = ("optuna", "mlflow")
DEFAULT_DIR = ".pgdata"
DEFAULT_PORT = 5433


def bin_dir() -> Path:
    """The folder holding initdb and pg_ctl."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if not versions:
        raise ConfigError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; install them, e.g. "
            "apt-get install postgresql"
        )
    return versions[-1].parent


def _as_owner(cmd: list[str]) -> list[str]:
    """Run as `postgres` when we are root (initdb and postgres refuse root)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def url(port: int, database: str = "optuna") -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"


def start(datadir: str | Path, port: int = DEFAULT_PORT, databases=DATABASES) -> str:
    """Initialise (once) and start a server on 127.0.0.1:`port`; create `databases`.
    Returns the URL of the first database."""
    d = Path(datadir).resolve()
    b = bin_dir()
    if not (d / "PG_VERSION").is_file():
        d.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(d, "postgres", "postgres")
        cmd = [str(b / "initdb"), "-D", str(d), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        _run(_as_owner(cmd), "initdb")
    if not running(d):  # a stale postmaster.pid after a crash is fine for pg_ctl
        opts = f"-p {port} -k {d} -c listen_addresses=127.0.0.1"
        cmd = [str(b / "pg_ctl"), "-D", str(d), "-l", str(d / "server.log"), "-o", opts]
        _run(_as_owner([*cmd, "-w", "-t", "60", "start"]), "pg_ctl start")
    import psycopg

    dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            have = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
            for db in databases:
                if db not in have:
                    conn.execute(f'CREATE DATABASE "{db}"')
    except psycopg.OperationalError as e:
        why = str(e).strip().splitlines()[0]
        raise ConfigError(f"PostgreSQL in {d} is not answering on port {port}: {why}") from None
    return url(port, databases[0])


def stop(datadir: str | Path) -> bool:
    """Stop the server of `datadir` (fast shutdown); False when none was running."""
    d = Path(datadir).resolve()
    if not running(d):
        return False
    _run(_as_owner([str(bin_dir() / "pg_ctl"), "-D", str(d), "-m", "fast", "-w", "stop"]), "stop")
    return True


def running(datadir: Path) -> bool:
    """Whether a server runs on `datadir` (`pg_ctl status`)."""
    if not (datadir / "PG_VERSION").is_file():
        return False
    cmd = _as_owner([str(bin_dir() / "pg_ctl"), "-D", str(datadir), "status"])
    return subprocess.run(cmd, capture_output=True, cwd="/").returncode == 0


def _run(cmd: list[str], what: str) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"PostgreSQL {what} failed (exit {out.returncode}): {tail[0]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lit_mia.sweep.pgserver")
    p.add_argument("action", choices=("start", "stop"))
    p.add_argument("--dir", default=DEFAULT_DIR, help="data folder (git-ignored)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    a = p.parse_args(argv)
    try:
        if a.action == "start":
            start(a.dir, a.port)
            print(f"PostgreSQL on 127.0.0.1:{a.port} (data in {a.dir}):")
            print(f"  studies:  sweep.storage={url(a.port, 'optuna')}")
            print(f"  tracking: mlflow server --backend-store-uri {url(a.port, 'mlflow')}")
        else:
            print("stopped" if stop(a.dir) else f"no server running in {a.dir}")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
