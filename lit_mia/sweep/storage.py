"""Study storage: SQLite beside the MLflow store, or any RDB URL (PostgreSQL for many workers).

`postgresql://` URLs use psycopg 3 (`postgresql+psycopg://`), the driver lit_mia installs;
SQLAlchemy's default for `postgresql://` would be psycopg2. `check` connects once before any
trial (≤ 10 s) and turns a missing driver or a refusing server into one ConfigError line.

Faults (Optuna's heartbeats, `RDBStorage(heartbeat_interval, grace_period)`): a running trial
records a heartbeat every `sweep.heartbeat_interval` s. A worker killed outright (kill -9, OOM)
stops beating; after `sweep.grace_period` s the next worker to start or continue a trial fails
it (`optuna.storages.fail_stale_trials`), enqueues its parameters again (at most
`sweep.max_retry` times, `RetryHeartbeatStaleTrialCallback`) and ends the trial's MLflow run
FAILED with the tag `lit_mia.reaped` (`StaleTrialReaper`).
"""

from __future__ import annotations

from pathlib import Path

import optuna

from lit_mia import tracking
from lit_mia.errors import ConfigError
from lit_mia.paths import creatable

CONNECT_TIMEOUT_S = 10
PARENT_ATTR = "mlflow_parent_run_id"  # study user attr: the sweep's MLflow parent run


def default_url(
    storage: str | None, tracking_uri: str, artifact_root: str | None, create: bool = True
) -> str:
    """`sweep.storage`, or SQLite `optuna.db` beside the MLflow SQLite store (else mlruns/);
    creates the store's folder unless `create` is false."""
    if storage:
        return normalize(storage)
    uri, _ = tracking.resolve_uri(tracking_uri, artifact_root, create)
    if uri.startswith("sqlite:///"):
        return f"sqlite:///{Path(uri[len('sqlite:///') :]).parent / 'optuna.db'}"
    return f"sqlite:///{Path('mlruns').resolve() / 'optuna.db'}"


def normalize(url: str) -> str:
    """`postgresql://` and `postgres://` -> `postgresql+psycopg://` (psycopg 3)."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def shown(url: str) -> str:
    """The URL with any password masked, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: say it as given
        return url


def _engine_kwargs(url: str) -> dict:
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}, "pool_pre_ping": True}
    return {}


def check(url: str) -> None:
    """Connect once; ConfigError naming the URL when the driver is missing or the server
    refuses (before any trial runs)."""
    import sqlalchemy

    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sqlalchemy.create_engine(url, **_engine_kwargs(url))
        with engine.connect():
            pass
        engine.dispose()
    except (ImportError, sqlalchemy.exc.NoSuchModuleError) as e:
        raise ConfigError(
            f"sweep.storage {shown(url)}: its database driver is not installed ({e}); "
            "use postgresql://... (psycopg 3, installed with lit_mia) or sqlite:///path"
        ) from None
    except sqlalchemy.exc.ArgumentError as e:
        raise ConfigError(f"sweep.storage {url!r} is not a database URL ({e})") from None
    except sqlalchemy.exc.OperationalError as e:
        why = str(e.orig or e).strip().splitlines()[0]
        raise ConfigError(
            f"sweep.storage {shown(url)} refused the connection ({why}); start the database "
            "(make db) or fix the URL"
        ) from None


def check_offline(url: str) -> str:
    """`--dry-run`'s check of a storage URL without connecting: a database URL whose driver
    imports, a SQLite file whose folder can be created. Returns what it found, in words."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
        dialect.import_dbapi()  # the driver module (create_engine would import it)
    except sqlalchemy.exc.ArgumentError as e:
        raise ConfigError(f"sweep.storage {url!r} is not a database URL ({e})") from None
    except (ImportError, sqlalchemy.exc.NoSuchModuleError) as e:
        raise ConfigError(
            f"sweep.storage {shown(url)}: its database driver is not installed ({e}); "
            "use postgresql://... (psycopg 3, installed with lit_mia) or sqlite:///path"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return f"{url} ({creatable(parsed.database or '', 'sweep.storage')})"
    return f"{shown(url)} (driver {parsed.get_driver_name()} found; server not contacted)"


class StaleTrialReaper:
    """`heartbeat_stale_trial_callback`: re-enqueue a dead worker's trial (at most `max_retry`
    times) and end its MLflow run FAILED, tagged `lit_mia.reaped`."""

    def __init__(self, tracking_uri: str, study_name: str, max_retry: int) -> None:
        self.tracking_uri, self.study_name = tracking_uri, study_name
        self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.retry(study, trial)
        parent = study.user_attrs.get(PARENT_ATTR)
        if parent:
            reaped = tracking.reap_runs(
                self.tracking_uri,
                parent,
                run_name(self.study_name, trial.number),
                f"trial {trial.number} failed: no heartbeat for the grace period (worker died)",
            )
            print(f"reaped trial {trial.number} of a dead worker (MLflow runs {reaped} FAILED)")


def run_name(study_name: str, number: int) -> str:
    """The MLflow run name of trial `number` (how a reaper finds it)."""
    return f"{study_name}/trial-{number}"


def open_storage(url: str, settings, tracking_uri: str, study_name: str):
    """RDBStorage with heartbeats and the stale-trial reaper."""
    return optuna.storages.RDBStorage(
        url,
        engine_kwargs=_engine_kwargs(url),
        heartbeat_interval=settings.heartbeat_interval,
        grace_period=settings.grace_period,
        heartbeat_stale_trial_callback=StaleTrialReaper(
            tracking_uri, study_name, settings.max_retry
        ),
    )
