"""Opening a study safely: one driver at a time, the same config as before, the right folder.

Optuna storage is the single record of a search. This module owns the checks made before
anything is written to it: the driver lock, a readable storage, a fingerprint of the space,
evaluation settings and objectives that a resumed run must match, and the study folder's
identity (``study.json``: name, storage and a uid that the stored study also carries), so that
a folder never lends its files to another study.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.samplers import BaseSampler

from search.config import ConfigError, SearchConfig, fingerprint_difference
from search.paths import STUDY_FILES, StudyPaths

FINGERPRINT_ATTR = "attnas_fingerprint"
UID_ATTR = "attnas_uid"


class StudyLockedError(RuntimeError):
    pass


def _credentials(url: str) -> tuple[str, str, str | None, str] | None:
    """(``scheme://``, user, password or None, ``host...``) of a URL with credentials, else
    None. The credentials end at the *last* ``@`` before any query: a password may hold
    ``@``, ``:`` or ``/`` unencoded, and a user may be empty (``postgresql://:pw@host``)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.startswith("sqlite"):
        return None
    at = rest.partition("?")[0].rfind("@")
    if at < 0:
        return None
    user, colon, password = rest[:at].partition(":")
    return f"{scheme}://", user, password if colon else None, rest[at + 1 :]


def mask_url(url: str) -> str:
    """Hide a password in a storage URL for display: postgresql://user:***@host/db."""
    parts = _credentials(url)
    if parts is None or parts[2] is None:
        return url
    prefix, user, _, host = parts
    return f"{prefix}{user}:***@{host}"


def hide_password(text: str, url: str) -> str:
    """``text`` (a driver's error message, say) with ``url``'s password masked wherever it
    appears, the URL itself included."""
    parts = _credentials(url)
    password = parts[2] if parts else None
    text = text.replace(url, mask_url(url))
    return text.replace(password, "***") if password else text


def strip_password(url: str) -> str:
    """The URL without its password, for files: libpq then takes the password from
    PGPASSWORD or ~/.pgpass, and a copied study folder leaks nothing."""
    parts = _credentials(url)
    if parts is None or parts[2] is None:
        return url
    prefix, user, _, host = parts
    return f"{prefix}{user}@{host}" if user else f"{prefix}{host}"


@dataclass
class DriverLock:
    """Held for the driver's lifetime; the kernel (flock) or the server (advisory lock)
    releases it if the driver dies, so a killed driver never leaves a stale lock."""

    handle: Any

    def release(self) -> None:
        if isinstance(self.handle, _PgLock):
            self.handle.release()
            return
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


@dataclass
class _PgLock:
    connection: Any
    key: int

    def release(self) -> None:
        import sqlalchemy as sa

        try:
            self.connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        finally:
            self.connection.close()


def _advisory_key(study: str) -> int:
    digest = hashlib.sha256(f"attnas:{study}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _pg_lock(url: str, study: str) -> _PgLock:
    import sqlalchemy as sa

    try:
        conn = sa.create_engine(with_driver(url), poolclass=sa.pool.NullPool).connect()
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"cannot open storage {mask_url(url)}: {hide_password(first, url)}"
        ) from None
    key = _advisory_key(study)
    got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
    conn.commit()
    if not got:
        conn.close()
        raise StudyLockedError(
            f"study {study} is locked by another driver (PostgreSQL advisory lock {key}); "
            "wait for it or stop it first"
        )
    return _PgLock(conn, key)


def lock_holder(path: Path) -> str | None:
    """Who holds the flock on ``path``, from the kernel's own table (/proc/locks): the
    process that holds it, whatever pid the file says (a holder may have been forked from
    the one that wrote it). None when nobody does; the file's text where /proc is absent."""
    try:
        inode = path.stat().st_ino
        table = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return path.read_text().strip() or "unknown" if path.is_file() else None
    for line in table:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (or with "->" for a waiter)
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        if fields[5].rsplit(":", 1)[-1] == str(inode):
            pid = fields[4]
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                what = command.decode(errors="replace").strip()[:80]
            except OSError:
                what = "?"
            return f"pid {pid} on {os.uname().nodename}: {what}"
    return None


def _locked(study: str, holder: str | None) -> StudyLockedError:
    return StudyLockedError(
        f"study {study} is locked by another driver ({holder or 'unknown'}); "
        "wait for it or stop it first"
    )


def check_unlocked(paths: StudyPaths, study: str, storage_url: str | None = None) -> None:
    """Refuse, before anything is printed, a study another driver is running (SQLite: the
    folder's flock; PostgreSQL storage is checked when the driver takes its lock)."""
    if storage_url and storage_url.startswith("postgresql") or not paths.lock.is_file():
        return
    with open(paths.lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _locked(study, lock_holder(paths.lock)) from None
        fcntl.flock(handle, fcntl.LOCK_UN)


def acquire_lock(paths: StudyPaths, study: str, storage_url: str | None = None) -> DriverLock:
    """A PostgreSQL advisory lock on the study's name for PostgreSQL storage (drivers may run
    on different hosts, from copies of the folder), an exclusive flock on the study folder
    otherwise (its SQLite file lives there)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    if storage_url and storage_url.startswith("postgresql"):
        return DriverLock(_pg_lock(storage_url, study))
    handle = open(paths.lock, "a+")  # noqa: SIM115  (held for the driver's lifetime)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise _locked(study, lock_holder(paths.lock)) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {os.uname().nodename}")
    handle.flush()
    return DriverLock(handle)


def make_sampler(cfg: SearchConfig) -> BaseSampler:
    """A fresh sampler each launch (state lives in storage); constraints read user attrs.

    Optuna 5 deprecates ``constraints_func`` for ``Trial.set_constraint`` (removal planned
    for 7, which the ``optuna<6`` bound keeps out); the user-attr form works on every Optuna
    the bound admits and on studies stored by earlier attnas versions, so it stays, and the
    notice is not shown at every launch of a constrained search; nor is NSGA-III's
    "experimental" notice."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`constraints_func` has been deprecated", category=FutureWarning
        )
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        return _sampler(cfg)


def _sampler(cfg: SearchConfig) -> BaseSampler:
    s = cfg.sampler
    constraints = (
        (lambda t: t.user_attrs.get("constraints", [0.0])) if cfg.constraints.active() else None
    )
    if s.name == "nsga2":
        return optuna.samplers.NSGAIISampler(
            population_size=s.population_size, seed=s.seed, constraints_func=constraints
        )
    if s.name == "nsga3":
        return optuna.samplers.NSGAIIISampler(
            population_size=s.population_size, seed=s.seed, constraints_func=constraints
        )
    if s.name == "tpe":
        return optuna.samplers.TPESampler(
            seed=s.seed, multivariate=True, constant_liar=True, constraints_func=constraints
        )
    if s.name == "gp":
        return optuna.samplers.GPSampler(seed=s.seed, constraints_func=constraints)
    return optuna.samplers.RandomSampler(seed=s.seed)


_OPEN_ATTEMPTS = 5
_SCHEMA_RACE = re.compile(r"already exists|UNIQUE constraint failed: alembic_version")


# -- Optuna's private API, used here and nowhere else ------------------------------------------
# A resumed driver must act on a trial it did not ask for (one a dead driver left RUNNING):
# set its record and tell it. Optuna's public API reaches a trial by number only through
# ``study.tell`` and the full ``study.trials`` list, so these two use the storage directly.
# tests/test_storage_urls.py::test_the_private_optuna_api_we_use_still_exists fails loudly
# when an Optuna upgrade moves it.
def trial_by_number(study: optuna.Study, number: int) -> optuna.Trial:
    """A live ``optuna.Trial`` handle (set attributes on it, tell it) for trial ``number``."""
    storage, study_id = study._storage, study._study_id
    return optuna.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, number))


def frozen_by_number(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """Trial ``number`` as stored, without loading every trial of the study."""
    return study._storage.get_trial(trial_by_number(study, number)._trial_id)


# The study's current target: n_trials of its latest launch (a resume may raise it).
TARGET_ATTR = "attnas:n_trials"


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def with_driver(url: str) -> str:
    """A plain ``postgresql://`` URL with the PostgreSQL driver that is installed: SQLAlchemy
    2.1 maps the bare scheme to psycopg 3, while attnas[postgres] installs psycopg2, and its
    "Failed to import DB access module" names neither."""
    if not url.startswith("postgresql://"):
        return url
    if _installed("psycopg"):
        return url.replace("postgresql://", "postgresql+psycopg://", 1)
    if _installed("psycopg2"):
        return url.replace("postgresql://", "postgresql+psycopg2://", 1)
    raise ConfigError(
        f"storage {mask_url(url)} needs a PostgreSQL driver: pip install 'attnas[postgres]' "
        "(psycopg2) or psycopg"
    )


def _sqlite_write_ahead(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _write_ahead(engine: Any) -> None:
    """SQLite in write-ahead-log mode, synced at checkpoints rather than at every commit.

    Why: Optuna commits once per parameter a trial suggests (20 here) and once per record,
    and with SQLite's default rollback journal each commit waits for the disk: the driver
    spent about 30% of a 300-trial run in those waits (``bench/scale.py`` profiled). In WAL
    mode a commit is an append; a crash of any process (SIGKILL included) loses nothing
    committed, and a power cut can lose only the last commits, never the order (what is
    kept is a prefix of what was written, so no decision survives without the writes
    before it). Readers (``attnas status``, optuna-dashboard) no longer wait on the
    driver's writes. Each new connection gets the pragmas; those the schema check left in
    the pool are dropped."""
    from sqlalchemy import event

    event.listen(engine, "connect", _sqlite_write_ahead)
    engine.dispose()


def connect_storage(url: str) -> optuna.storages.BaseStorage:
    url = with_driver(url)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if (
            path.exists()
            and path.stat().st_size
            and not path.read_bytes()[:16].startswith(b"SQLite format 3")
        ):
            raise ConfigError(f"storage {path} is not an SQLite database (corrupt or wrong file)")
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
            if url.startswith("sqlite:"):
                _write_ahead(storage.engine)
            return storage
        except Exception as exc:  # sqlalchemy's many errors: one line with the masked URL
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            # Another process (a watcher, optuna-dashboard, a second worker) creating the
            # schema at the same moment makes ours fail ("table ... already exists", or a
            # duplicate alembic version row); once it has
            # finished, opening again finds the tables and succeeds.
            if _SCHEMA_RACE.search(first) and attempt + 1 < _OPEN_ATTEMPTS:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise ConfigError(
                f"cannot open storage {mask_url(url)}: {hide_password(first, url)}"
            ) from None
    raise AssertionError("unreachable")


def check_existing(cfg: SearchConfig) -> None:
    """Refuse, before anything is printed or written, a config that differs from the study's,
    or a folder that belongs to another study."""
    storage = connect_storage(cfg.storage_url)
    try:
        study = optuna.load_study(study_name=cfg.study, storage=storage)
    except KeyError:
        return
    _check_fingerprint(study, cfg)
    _check_identity(StudyPaths(cfg.study_dir), cfg, study)


def _check_fingerprint(study: optuna.Study, cfg: SearchConfig) -> None:
    stored = study.user_attrs.get(FINGERPRINT_ATTR)
    if stored is None:
        raise ConfigError(f"study {cfg.study!r} exists but was not created by attnas")
    diff = fingerprint_difference(stored, cfg.fingerprint())
    if diff:
        raise ConfigError(f"study {cfg.study!r} was created with a different config: {diff}")


def open_or_create(cfg: SearchConfig, *, must_exist: bool = False) -> tuple[optuna.Study, bool]:
    """The study (loaded after checking it was made with the same config) and whether it was
    created just now."""
    storage = connect_storage(cfg.storage_url)
    try:
        existing = optuna.load_study(
            study_name=cfg.study, storage=storage, sampler=make_sampler(cfg)
        )
    except KeyError:
        existing = None
    if existing is not None:
        _check_fingerprint(existing, cfg)
        return existing, False
    if must_exist:
        raise ConfigError(f"no study {cfg.study!r} in {mask_url(cfg.storage_url)}")
    study = optuna.create_study(
        study_name=cfg.study,
        storage=storage,
        directions=cfg.directions,
        sampler=make_sampler(cfg),
    )
    study.set_user_attr(FINGERPRINT_ATTR, cfg.fingerprint())
    study.set_user_attr(UID_ATTR, uuid.uuid4().hex)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(cfg.objectives))
    return study, True


def open_study(cfg: SearchConfig, *, must_exist: bool = False) -> optuna.Study:
    """Create the study or load it after checking its config and its folder."""
    study, _ = open_or_create(cfg, must_exist=must_exist)
    _check_identity(StudyPaths(cfg.study_dir), cfg, study)
    return study


def _read_identity(paths: StudyPaths) -> dict[str, Any] | None:
    try:
        found = json.loads(paths.identity.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _check_identity(paths: StudyPaths, cfg: SearchConfig, study: optuna.Study) -> None:
    """A folder whose ``study.json`` names another study's uid is refused: its evaluations
    and config are not this study's."""
    found = _read_identity(paths)
    uid = study.user_attrs.get(UID_ATTR)
    if found is None or uid is None or found.get("uid") == uid:
        return
    raise ConfigError(
        f"{paths.root} holds the files of another study ({found.get('study')!r} uid "
        f"{found.get('uid')}) than {cfg.study!r} in {mask_url(cfg.storage_url)} (uid {uid}); "
        "run that study from its own folder, or start this one in a new folder"
    )


def claim_folder(
    paths: StudyPaths, cfg: SearchConfig, study: optuna.Study, created: bool
) -> Path | None:
    """Make the study folder this study's: for a new study, move any earlier study's files
    aside (returns where); then write ``config.yaml`` and ``study.json`` if missing."""
    from search.configio import dump_config

    moved = None
    if created:
        stale = [paths.root / name for name in STUDY_FILES if (paths.root / name).exists()]
        if stale:
            moved = paths.root / f"stale-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
            moved.mkdir()
            for path in stale:
                path.rename(moved / path.name)
    _check_identity(paths, cfg, study)
    uid = study.user_attrs.get(UID_ATTR)
    if uid is None:  # a study from before folders knew their study
        uid = uuid.uuid4().hex
        study.set_user_attr(UID_ATTR, uid)
    if not paths.config.is_file():
        dump_config(cfg, paths.config)
    if _read_identity(paths) is None:
        identity = {"study": cfg.study, "storage": strip_password(cfg.storage_url), "uid": uid}
        paths.identity.write_text(json.dumps(identity, indent=2) + "\n")
    return moved
