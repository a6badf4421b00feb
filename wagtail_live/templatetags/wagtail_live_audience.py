"""Audience template tags: schema.org JSON-LD and the *Remind me* button.

``{% load wagtail_live_audience %}``, then ``{% live_session_jsonld session %}`` in
any template that shows a session, and ``{% remind_me_button session %}`` where
visitors may ask for a reminder.
"""

import json

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from .. import analytics, reminders, schedule
from ..permissions import can_watch

register = template.Library()

# JSON inside <script> must not be able to close the element or open a comment.
_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


@register.simple_tag(takes_context=True)
def live_session_jsonld(context, session, with_url=True):
    """A ``<script type="application/ld+json">`` BroadcastEvent for ``session``.

    Its ``url`` is the current page's, unless ``with_url=False`` (a page listing
    several sessions is not the page of any one of them). Nothing for visitors
    who may not watch the session: its title and description are theirs to see
    only then (``permissions.can_watch``).
    """
    request = context.get("request")
    if session is None or not can_watch(session, getattr(request, "user", None)):
        return ""
    url = request.build_absolute_uri() if request is not None and with_url else ""
    data = json.dumps(schedule.broadcast_event(session, url=url), sort_keys=True)
    return format_html(
        '<script type="application/ld+json">{}</script>',
        mark_safe(data.translate(_SCRIPT_ESCAPES)),  # noqa: S308 - escaped just above
    )


@register.inclusion_tag("wagtail_live/includes/remind_me.html", takes_context=True)
def remind_me_button(context, session):
    """*Remind me* for a session that has not started; a login link for anonymous visitors."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return {
        "session": session,
        "show": session is not None
        and session.status
        in (
            session.Status.SCHEDULED,
            session.Status.READY,
        ),
        "logged_in": bool(user and user.is_authenticated),
        "waiting": reminders.is_waiting(session, user) if session is not None else False,
        "next": request.get_full_path() if request is not None else "",
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("wagtail_live/admin/includes/viewer_chart.html")
def live_viewer_chart(session):
    """The admin's viewer chart of ``session``; while it is live it keeps polling for samples."""
    chart = analytics.chart_data(session)
    return {
        "session": session,
        "chart": chart,
        "sample_count": len(chart["times"]),
        "chart_text": {"viewers": _("Viewers")},
        "samples_url": reverse("wagtail_live_admin:analytics_samples", args=[session.pk])
        if session.is_live
        else "",
    }


@register.inclusion_tag("wagtail_live/includes/watched_live.html")
def live_watched(session):
    """“N watched live” from the figures kept when ``session`` ended (nothing before that)."""
    figures = getattr(session, "figures", None) if session is not None else None
    return {"figures": figures}


@register.inclusion_tag("wagtail_live/admin/includes/waiting_count.html")
def live_waiting_count(session):
    """For the host: how many people wait for a reminder about ``session`` (before it starts)."""
    waiting = 0
    if session is not None and session.status in (session.Status.SCHEDULED, session.Status.READY):
        waiting = reminders.waiting_count(session)
    return {"waiting": waiting}
