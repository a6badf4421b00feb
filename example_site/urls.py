from django.conf import settings
from django.conf.urls.static import static
from django.urls import include, path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.documents import urls as wagtaildocs_urls

urlpatterns = [
    path("admin/", include(wagtailadmin_urls)),
    path("documents/", include(wagtaildocs_urls)),
    # wagtail_live's public URLs: playback, recordings, calendar files, encoder callbacks.
    # They are the only routes to a session's private files, which live under
    # WAGTAIL_LIVE["PRIVATE_ROOT"], outside MEDIA_ROOT (docs/security.md).
    path("live/", include("wagtail_live.urls")),
]

if settings.DEBUG:
    # MEDIA_ROOT holds only what anyone may fetch (public sessions' recordings, images):
    # serving it by path, in any spelling, reaches nothing private.
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

urlpatterns += [path("", include(wagtail_urls))]
