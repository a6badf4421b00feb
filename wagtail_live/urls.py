"""Public URLs. Sites include them with ``path("live/", include("wagtail_live.urls"))``."""

from django.urls import path

from .views import playback

app_name = "wagtail_live"

urlpatterns = [
    path("sessions/<int:pk>/hls/<path:name>", playback.hls, name="hls"),
    path("sessions/<int:pk>/status.json", playback.session_status, name="session_status"),
    path("sessions/<int:pk>/calendar.ics", playback.session_calendar_file, name="session_calendar"),
]
