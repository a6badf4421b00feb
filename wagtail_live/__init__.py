"""wagtail_live: TikTok-like live streaming for Wagtail sites."""

__version__ = "0.1.0"
