import re

from django.conf import settings
from django.conf.urls.static import static
from django.urls import include, path, re_path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.documents import urls as wagtaildocs_urls

from wagtail_live.conf import live_settings
from wagtail_live.views.playback import live_media

urlpatterns = [
    path("admin/", include(wagtailadmin_urls)),
    path("documents/", include(wagtaildocs_urls)),
    # wagtail_live's public URLs: playback, calendar files, encoder callbacks.
    path("live/", include("wagtail_live.urls")),
]

if settings.DEBUG:
    # The live folder holds private sessions' files too: checked per session, never open.
    live_prefix = settings.MEDIA_URL.lstrip("/") + live_settings.MEDIA_SUBDIR.strip("/") + "/"
    urlpatterns += [re_path(rf"^{re.escape(live_prefix)}(?P<path>.*)$", live_media)]
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

urlpatterns += [path("", include(wagtail_urls))]
