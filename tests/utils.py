"""Plain test helpers (no factory framework), shared by every test module."""

import http.client
import os
import shutil

import pytest

REQUIRE_ALL = os.environ.get("WAGTAIL_LIVE_REQUIRE_ALL") == "1"


def require(condition, reason):
    """Skip the calling test when ``condition`` is false, or fail it under CI.

    CI sets ``WAGTAIL_LIVE_REQUIRE_ALL=1``: there a missing service, binary or
    browser is a broken machine, not a reason to pass quietly.
    """
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required for this test but missing: {reason}", pytrace=False)
    pytest.skip(reason)


def chromium_path():
    """Debian's Chromium, which Playwright must use (its own download cannot work here)."""
    return (
        os.environ.get("WAGTAIL_LIVE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    )


def make_editor(username, *permissions):
    """A user with admin access and change rights on live sessions, plus ``permissions`` codenames."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(username, f"{username}@example.com", "password")
    codenames = [
        "access_admin",
        "add_livesession",
        "change_livesession",
        "delete_livesession",
        *permissions,
    ]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return get_user_model().objects.get(pk=user.pk)  # fresh: no stale permission cache


def make_session(title="Open day", owner=None, **fields):
    """A saved LiveSession (ready, public) with no stream key unless asked for."""
    from wagtail_live.models import LiveSession

    return LiveSession.objects.create(title=title, owner=owner, **fields)


#: Flags Debian's Chromium needs here: no sandbox as root, no GPU, and no calls home
#: (the closed network refuses them, slowly).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch_chromium(playwright, *extra_args):
    """Debian's Chromium through Playwright, with ``CHROMIUM_ARGS`` plus ``extra_args``."""
    return playwright.chromium.launch(
        executable_path=chromium_path(), args=[*CHROMIUM_ARGS, *extra_args]
    )


def raw_get(port, path, headers=None, timeout=10):
    """(status, headers, body) of a GET sent with exactly this path (no client normalising)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()
