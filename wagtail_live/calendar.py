"""The .ics invite behind *Add to calendar*, built with the ``icalendar`` library."""

from datetime import timedelta

from django.utils import timezone
from icalendar import Calendar, Event

# A live has no planned end; calendars need one, so the invite blocks an hour.
DEFAULT_DURATION = timedelta(hours=1)


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
