"""Admin URLs, included under the ``wagtail_live_admin`` namespace by ``register_admin_urls``."""

from django.urls import path

from .views import dashboard, go_live

app_name = "wagtail_live_admin"

urlpatterns = [
    path("<int:pk>/go-live/", go_live.GoLiveView.as_view(), name="go_live"),
    path("<int:pk>/end/", go_live.EndLiveView.as_view(), name="end_live"),
    path("<int:pk>/stream-key/", go_live.StreamKeyView.as_view(), name="stream_key"),
    path("<int:pk>/status/", go_live.SessionStatusView.as_view(), name="status"),
    path("<int:pk>/dashboard/", dashboard.DashboardView.as_view(), name="dashboard"),
]
