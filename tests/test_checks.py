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
