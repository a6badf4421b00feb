"""The .ics invite behind *Add to calendar*, built with the ``icalendar`` library."""

from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from icalendar import Calendar, Event
from wagtail.models import Page, ReferenceIndex

# A live has no planned end; calendars need one, so the invite blocks an hour.
DEFAULT_DURATION = timedelta(hours=1)


def player_pages(session):
    """Live pages whose content shows ``session`` (a live player block chose it), best first.

    Found through Wagtail's reference index, which records the snippet each
    StreamField block refers to. Pages any visitor may open come before
    restricted ones, then the most recently published.
    """
    page_type = ContentType.objects.get_for_model(Page)
    page_ids = (
        ReferenceIndex.get_references_to(session)
        .filter(base_content_type=page_type)
        .values_list("object_id", flat=True)
    )
    pages = Page.objects.live().filter(pk__in=[int(pk) for pk in page_ids if pk.isdigit()])
    public_ids = set(pages.public().values_list("pk", flat=True))
    return sorted(
        pages,
        key=lambda page: (
            page.pk not in public_ids,
            -(page.last_published_at.timestamp() if page.last_published_at else 0),
        ),
    )


def player_page_url(session, request, page_id=None):
    """The full URL of the page showing ``session``'s live player, for its calendar invite.

    ``page_id`` (the page *Add to calendar* was clicked on) wins when it is one of
    ``player_pages``; without any such page, the site's root page.
    """
    pages = player_pages(session)
    chosen = next((page for page in pages if str(page.pk) == str(page_id)), None)
    chosen = chosen or (pages[0] if pages else None)
    url = chosen.get_full_url(request) if chosen is not None else None
    return url or request.build_absolute_uri("/")


def session_calendar(session, url="", host="wagtail-live"):
    """Return the ``.ics`` bytes of one event for ``session``'s scheduled start."""
    calendar = Calendar()
    calendar.add("prodid", "-//wagtail-livestream//Live session//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    # A stable UID lets calendar apps update the event when it is rescheduled.
    event.add("uid", f"live-session-{session.pk}@{host}")
    event.add("dtstamp", timezone.now())
    event.add("dtstart", session.scheduled_start)
    event.add("dtend", session.scheduled_start + DEFAULT_DURATION)
    event.add("summary", session.title)
    if session.description:
        event.add("description", session.description)
    if url:
        event.add("url", url)
        event.add("location", url)
    calendar.add_component(event)
    return calendar.to_ical()
