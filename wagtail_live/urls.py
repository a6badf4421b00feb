"""Public URLs. Sites include them with ``path("live/", include("wagtail_live.urls"))``."""

from django.urls import path

from .views import playback, recording_files, reminders, rtmp, webrtc_watch, whip

app_name = "wagtail_live"

urlpatterns = [
    path("sessions/<int:pk>/hls/<path:name>", playback.hls, name="hls"),
    # Signed playback grants (issue 13): the embedded verifier in asgi.py answers these
    # before Django; without it this view does the same checks (slower).
    path("delivery/", playback.delivery_root, name="delivery_root"),
    path("delivery/<path:rest>", playback.delivery, name="delivery"),
    path("sessions/<int:pk>/status.json", playback.session_status, name="session_status"),
    path("sessions/<int:pk>/calendar.ics", playback.session_calendar_file, name="session_calendar"),
    # Audience (issue 7): *Remind me* and the e-mails' one-click unsubscribe link.
    path("sessions/<int:pk>/remind/", reminders.remind_me, name="remind_me"),
    path("reminders/unsubscribe/<str:token>/", reminders.unsubscribe, name="unsubscribe"),
    # Recordings (issue 6): a private session's recording, to members only.
    path(
        "recordings/<int:pk>/media",
        recording_files.recording_media,
        name="recording_media",
    ),
    path(
        "recordings/<int:pk>/poster.jpg",
        recording_files.recording_poster,
        name="recording_poster",
    ),
    path(
        "recordings/<int:pk>/played/",
        recording_files.recording_played,
        name="recording_played",
    ),
    # WHIP (RFC 9725) through Janus (ingest/janus.py): the stream key is the bearer token.
    path("whip/<int:pk>/", whip.whip_endpoint, name="whip"),
    path("whip/<int:pk>/<str:resource>/", whip.whip_resource, name="whip_resource"),
    # Sub-second playback of a WebRTC-fed session (views/webrtc_watch.py), authorised by a grant.
    path("webrtc/<int:pk>/<str:grant>/", webrtc_watch.watch, name="webrtc_watch"),
    path(
        "webrtc/<int:pk>/<str:grant>/<str:resource>/",
        webrtc_watch.viewer,
        name="webrtc_viewer",
    ),
    # nginx-rtmp callbacks (ingest/nginx_rtmp.py), guarded by WAGTAIL_LIVE["NGINX_SECRET"].
    path("rtmp/on_publish", rtmp.on_publish, name="rtmp_on_publish"),
    path("rtmp/on_publish_done", rtmp.on_publish_done, name="rtmp_on_publish_done"),
    path("rtmp/on_record_done", rtmp.on_record_done, name="rtmp_on_record_done"),
    path("rtmp/on_update", rtmp.on_update, name="rtmp_on_update"),
]
