import pytest
from django.core import checks
from django.test import override_settings

from wagtail_live.checks import check_channels_setup, check_live_settings


def ids(messages):
    return {message.id for message in messages}


def test_configured_site_has_no_warnings():
    assert check_channels_setup(None) == []
    assert check_live_settings(None) == []


def test_missing_channel_layer_warns():
    with override_settings(CHANNEL_LAYERS={}):
        messages = check_channels_setup(None)
    assert "wagtail_live.W001" in ids(messages)
    assert "CHANNEL_LAYERS" in messages[0].hint


def test_missing_asgi_application_warns():
    with override_settings(ASGI_APPLICATION=None):
        assert "wagtail_live.W002" in ids(check_channels_setup(None))


def test_unknown_setting_warns():
    with override_settings(WAGTAIL_LIVE={"MEDIA_SUBIDR": "typo"}):
        messages = check_live_settings(None)
    assert ids(messages) == {"wagtail_live.W003"}
    assert "MEDIA_SUBIDR" in messages[0].msg


def test_missing_apps_are_errors(monkeypatch):
    from django.apps import apps

    from wagtail_live.checks import check_installed_apps

    installed = apps.is_installed
    monkeypatch.setattr(
        apps, "is_installed", lambda name: name != "wagtailmedia" and installed(name)
    )
    messages = check_installed_apps(None)
    assert [m.id for m in messages] == ["wagtail_live.E001"]
    assert "wagtailmedia" in messages[0].msg


def test_manage_py_check_runs_our_checks():
    registered = {check.__name__ for check in checks.registry.registry.get_checks()}
    assert {"check_installed_apps", "check_channels_setup", "check_live_settings"} <= registered


def test_unconfigured_huey_runs_tasks_inline(settings):
    from wagtail_live.apps import INLINE_HUEY, use_inline_tasks_unless_huey_is_configured

    settings.WAGTAIL_LIVE_INLINE_TASKS = False  # the fixture removes what the test adds
    configured = settings.HUEY
    use_inline_tasks_unless_huey_is_configured()
    assert settings.HUEY == configured, "a site's own HUEY is left alone"
    del settings.HUEY
    use_inline_tasks_unless_huey_is_configured()
    assert settings.HUEY == INLINE_HUEY
    assert settings.WAGTAIL_LIVE_INLINE_TASKS is True


# -- W004: SQLite without what concurrent writers need (issue 10 §2) --
# These override DATABASES only for the check, which reads the settings and never connects.
pytestmark_sqlite = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")

EXAMPLE_SQLITE_OPTIONS = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
}


def sqlite_databases(tmp_path, options=None, **extra):
    config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "site.sqlite3")}
    if options is not None:
        config["OPTIONS"] = options
    return {"default": config, **extra}


def sqlite_check(tmp_path, options=None, **extra):
    from wagtail_live.checks import check_sqlite_concurrency

    with override_settings(DATABASES=sqlite_databases(tmp_path, options, **extra)):
        return check_sqlite_concurrency(None)


def sqlite_options_in(settings_file):
    """The literal ``"OPTIONS"`` dict of the DATABASES entry in ``settings_file``."""
    import ast
    from pathlib import Path

    source = (Path(__file__).resolve().parent.parent / settings_file).read_text()
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Assign) and statement.targets[0].id == "DATABASES":
            for node in ast.walk(statement.value):
                if isinstance(node, ast.Dict):
                    for key, value in zip(node.keys, node.values, strict=True):
                        if isinstance(key, ast.Constant) and key.value == "OPTIONS":
                            return ast.literal_eval(value)
    raise AssertionError(f"no DATABASES OPTIONS in {settings_file}")


@pytestmark_sqlite
def test_the_example_sites_sqlite_options_pass(tmp_path):
    assert sqlite_check(tmp_path, EXAMPLE_SQLITE_OPTIONS) == []
    # The example site and the tests' real daphne site carry these very options.
    assert sqlite_options_in("example_site/settings.py") == EXAMPLE_SQLITE_OPTIONS
    assert sqlite_options_in("tests/live_site_settings.py") == EXAMPLE_SQLITE_OPTIONS


@pytestmark_sqlite
def test_sqlite_without_any_option_warns_about_all_three(tmp_path):
    messages = sqlite_check(tmp_path)
    assert ids(messages) == {"wagtail_live.W004"}
    text = messages[0].msg
    assert "WAL" in text and "IMMEDIATE" in text and "busy timeout" in text
    assert "transaction_mode" in messages[0].hint and "docs/installation.md" in messages[0].hint


@pytestmark_sqlite
def test_sqlite_check_names_only_what_is_missing(tmp_path):
    without_wal = {**EXAMPLE_SQLITE_OPTIONS, "init_command": "PRAGMA synchronous=NORMAL"}
    text = sqlite_check(tmp_path, without_wal)[0].msg
    assert "WAL" in text and "IMMEDIATE" not in text and "busy timeout" not in text

    deferred = {**EXAMPLE_SQLITE_OPTIONS, "transaction_mode": "DEFERRED"}
    text = sqlite_check(tmp_path, deferred)[0].msg
    assert "IMMEDIATE" in text and "WAL" not in text

    short = {**EXAMPLE_SQLITE_OPTIONS, "timeout": 1}
    assert "busy timeout" in sqlite_check(tmp_path, short)[0].msg
    no_timeout = {k: v for k, v in EXAMPLE_SQLITE_OPTIONS.items() if k != "timeout"}
    assert "busy timeout" in sqlite_check(tmp_path, no_timeout)[0].msg


@pytestmark_sqlite
def test_sqlite_busy_timeout_and_wal_may_come_from_pragmas_or_the_file(tmp_path):
    import sqlite3

    pragmas = {
        "transaction_mode": "immediate",
        "init_command": "PRAGMA journal_mode = wal;PRAGMA busy_timeout=20000",
    }
    assert sqlite_check(tmp_path, pragmas) == []
    # WAL persists in the file: one set once with the sqlite3 shell counts.
    connection = sqlite3.connect(tmp_path / "site.sqlite3")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (x)")
    connection.close()
    options = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    assert sqlite_check(tmp_path, options) == []


@pytestmark_sqlite
def test_sqlite_check_ignores_other_databases_and_memory(tmp_path):
    other = {"ENGINE": "django.db.backends.postgresql", "NAME": "site"}
    memory = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    messages = sqlite_check(tmp_path, EXAMPLE_SQLITE_OPTIONS, other=other, memory=memory)
    assert messages == []
    # Each SQLite alias is judged on its own.
    bare = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "other.sqlite3")}
    messages = sqlite_check(tmp_path, EXAMPLE_SQLITE_OPTIONS, legacy=bare)
    assert [m.id for m in messages] == ["wagtail_live.W004"] and "'legacy'" in messages[0].msg


def test_plain_manage_py_check_runs_the_sqlite_check():
    # Not a ``database``-tagged check: those run only with ``check --database``.
    plain = {check.__name__ for check in checks.registry.registry.get_checks()}
    assert "check_sqlite_concurrency" in plain
