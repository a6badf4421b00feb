from datetime import timedelta

import pytest
from django.test import override_settings

from wagtail_live.conf import DEFAULTS, live_settings
from wagtail_live.ffmpeg import ffmpeg_binary


def test_defaults():
    assert live_settings.MEDIA_SUBDIR == "uploads/live"
    assert live_settings.STREAM_KEY_TTL == timedelta(hours=24)
    assert live_settings.RTMP == "embedded"


def test_overrides_are_reread():
    with override_settings(WAGTAIL_LIVE={"MEDIA_SUBDIR": "elsewhere"}):
        assert live_settings.MEDIA_SUBDIR == "elsewhere"
    assert live_settings.MEDIA_SUBDIR == DEFAULTS["MEDIA_SUBDIR"]


def test_unknown_attribute_is_a_clear_error():
    with pytest.raises(AttributeError, match="NOT_A_SETTING"):
        _ = live_settings.NOT_A_SETTING


def test_every_default_is_documented():
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "settings.md").read_text()
    missing = [key for key in DEFAULTS if f"`{key}`" not in text]
    assert not missing, f"undocumented settings: {missing}"


def test_ffmpeg_setting_wins():
    with override_settings(WAGTAIL_LIVE={"FFMPEG": "/opt/ffmpeg/bin/ffmpeg"}):
        assert ffmpeg_binary() == "/opt/ffmpeg/bin/ffmpeg"


def test_ffmpeg_is_found_on_a_fresh_machine():
    import subprocess

    path = ffmpeg_binary()
    result = subprocess.run([path, "-hide_banner", "-version"], capture_output=True, text=True)
    assert result.returncode == 0 and "ffmpeg version" in result.stdout
