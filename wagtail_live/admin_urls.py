"""Admin URLs, included under the ``wagtail_live_admin`` namespace by ``register_admin_urls``."""

from django.urls import path

from .views import analytics, dashboard, go_live

app_name = "wagtail_live_admin"

urlpatterns = [
    path("<int:pk>/go-live/", go_live.GoLiveView.as_view(), name="go_live"),
    path("<int:pk>/end/", go_live.EndLiveView.as_view(), name="end_live"),
    path("<int:pk>/stream-key/", go_live.StreamKeyView.as_view(), name="stream_key"),
    path("<int:pk>/status/", go_live.SessionStatusView.as_view(), name="status"),
    path("<int:pk>/dashboard/", dashboard.DashboardView.as_view(), name="dashboard"),
    # Audience (issue 7): per-session analytics and its CSV.
    path("<int:pk>/analytics/", analytics.SessionAnalyticsView.as_view(), name="analytics"),
    path(
        "<int:pk>/analytics.csv", analytics.SessionAnalyticsCSVView.as_view(), name="analytics_csv"
    ),
    path(
        "<int:pk>/analytics/samples.json",
        analytics.SessionSamplesView.as_view(),
        name="analytics_samples",
    ),
]
