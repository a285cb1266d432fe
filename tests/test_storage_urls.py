"""Passwords never reach the terminal or a file: every form of storage URL is masked."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from search.study import hide_password, mask_url, strip_password

# A password may hold anything a user types, '@', ':' and '/' included (not '?' or '#',
# which no URL parser would leave in the credentials either).
passwords = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + "@:/!$%&*()-_=+[]{};.,~"),
    min_size=1,
    max_size=24,
)
users = st.text(alphabet=string.ascii_lowercase + string.digits + "_.-", max_size=12)
hosts = st.from_regex(r"[a-z][a-z0-9.-]{0,20}(:[0-9]{2,5})?", fullmatch=True)
schemes = st.sampled_from(["postgresql", "postgresql+psycopg2", "postgresql+psycopg", "mysql"])


@given(scheme=schemes, user=users, password=passwords, host=hosts)
def test_every_password_is_masked_and_stripped(scheme, user, password, host):
    url = f"{scheme}://{user}:{password}@{host}/attnas?sslmode=require"
    assert mask_url(url) == f"{scheme}://{user}:***@{host}/attnas?sslmode=require"
    stripped = strip_password(url)
    expected_auth = f"{user}@" if user else ""
    assert stripped == f"{scheme}://{expected_auth}{host}/attnas?sslmode=require"
    message = f"connection to {url} failed: password {password!r} rejected"
    assert password not in hide_password(message, url).replace("***", "")


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///runs/quickstart/study.db",
        "sqlite:////abs/path/with@sign/study.db",
        "postgresql://user@host/db",
        "postgresql://host/db",
    ],
)
def test_urls_without_a_password_are_left_alone(url):
    assert mask_url(url) == url and strip_password(url) == url


def test_the_two_urls_that_leaked():
    assert mask_url("postgresql://:secret@host/db") == "postgresql://:***@host/db"
    assert mask_url("postgresql://user:p@ss@host/db") == "postgresql://user:***@host/db"
    assert "ss@" not in strip_password("postgresql://user:p@ss@host/db")


def test_a_plain_postgresql_url_gets_the_installed_driver(monkeypatch):
    import search.study as study
    from search.config import ConfigError

    url = "postgresql://attnas:pw@db:5432/attnas"
    monkeypatch.setattr(study, "_installed", lambda module: module == "psycopg2")
    assert study.with_driver(url) == "postgresql+psycopg2://attnas:pw@db:5432/attnas"
    monkeypatch.setattr(study, "_installed", lambda module: module in ("psycopg", "psycopg2"))
    assert study.with_driver(url).startswith("postgresql+psycopg://")
    monkeypatch.setattr(study, "_installed", lambda module: False)
    with pytest.raises(ConfigError, match=r"pip install 'attnas\[postgres\]'") as info:
        study.with_driver(url)
    assert "pw" not in str(info.value)
    assert study.with_driver("postgresql+psycopg2://a@b/c") == "postgresql+psycopg2://a@b/c"


@pytest.mark.slow
def test_a_plain_postgresql_url_opens_a_study(postgres):
    import optuna

    from search.study import connect_storage

    plain = postgres["url"].replace("postgresql+psycopg2://", "postgresql://")
    study = optuna.create_study(study_name="plain-url", storage=connect_storage(plain))
    assert study.study_name == "plain-url"


def test_the_private_optuna_api_we_use_still_exists(tmp_path):
    """search.study.trial_by_number / frozen_by_number are the one place attnas touches
    Optuna's private storage API: an upgrade that moves it fails here, not in a resume."""
    import optuna

    from search.study import frozen_by_number, trial_by_number

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    study.ask()
    asked = study.ask()
    handle = trial_by_number(study, 1)
    assert isinstance(handle, optuna.Trial) and handle.number == asked.number == 1
    handle.set_user_attr("record", {"x": 1})
    study.tell(handle, 0.5)
    frozen = frozen_by_number(study, 1)
    assert frozen.user_attrs == {"record": {"x": 1}} and frozen.value == 0.5
    assert frozen_by_number(study, 0).state == optuna.trial.TrialState.RUNNING
