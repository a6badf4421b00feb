"""*Remind me* and the one-click unsubscribe link: thin faces over ``wagtail_live.reminders``."""

from urllib.parse import urlencode

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from .. import reminders
from ..models import LiveSession

#: HTTP status for each refusal code.
REFUSAL_STATUS = {"login_required": 401, "forbidden": 403}


def _wants_json(request):
    return "application/json" in request.headers.get("Accept", "")


def _safe_next(request):
    """Where the visitor came from (``next`` or the referrer), if it is on this site."""
    for candidate in (request.POST.get("next"), request.headers.get("Referer")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
    return ""


def _login_url(next_url):
    login = getattr(settings, "WAGTAIL_FRONTEND_LOGIN_URL", None) or settings.LOGIN_URL
    login = login if login.startswith("/") else reverse(login)
    return f"{login}?{urlencode({'next': next_url or '/'})}"


def _message(request, heading, message, back_url="", status=200, confirm_label=""):
    context = {
        "heading": heading,
        "message": message,
        "back_url": back_url,
        # A POST form back to this URL (the unsubscribe confirmation), when given.
        "confirm_label": confirm_label,
    }
    return TemplateResponse(request, "wagtail_live/reminders/message.html", context, status=status)


@never_cache
@require_POST
def remind_me(request, pk):
    """POST: ask for (or with ``cancel``, stop) e-mails about a session.

    Answers JSON to ``Accept: application/json`` (the buttons' script) and a
    small page otherwise; anonymous visitors are sent to the login page.
    """
    session = get_object_or_404(LiveSession, pk=pk)
    next_url = _safe_next(request)
    if "cancel" in request.POST and request.user.is_authenticated:
        reminders.forget(session, request.user)
        return _remind_answer(request, session, next_url, _("You will not get reminders."))
    try:
        page_url = request.build_absolute_uri(next_url) if next_url else ""
        reminders.remind_me(session, request.user, page_url=page_url)
    except reminders.ReminderError as refusal:
        return _refusal(request, refusal, next_url)
    return _remind_answer(
        request, session, next_url, _("We will e-mail you before it starts and when it is live.")
    )


def _remind_answer(request, session, next_url, message):
    if _wants_json(request):
        return JsonResponse(
            {
                "ok": True,
                "waiting": reminders.is_waiting(session, request.user),
                "message": message,
            }
        )
    return _message(request, session.title, message, back_url=next_url)


def _refusal(request, refusal, next_url):
    status = REFUSAL_STATUS.get(refusal.code, 400)
    login_url = _login_url(next_url) if refusal.code == "login_required" else ""
    if _wants_json(request):
        data = {"ok": False, "error": refusal.code, "message": refusal.message}
        if login_url:
            data["login_url"] = login_url
        return JsonResponse(data, status=status)
    if login_url:
        return redirect(login_url)
    return _message(request, _("Reminder"), refusal.message, back_url=next_url, status=status)


@never_cache
@csrf_exempt  # the token is the credential; mail clients POST here without a form (RFC 8058)
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token):
    """The e-mails' unsubscribe link: GET asks, POST unsubscribes (RFC 8058 one-click).

    Mail scanners and link previews fetch (GET) every link in an e-mail, so a GET
    only shows a confirmation page with a button; mail clients' own *Unsubscribe*
    POSTs ``List-Unsubscribe=One-Click`` here and so does the button.
    """
    if request.method == "POST":
        reminder = reminders.unsubscribe(token)
    else:
        reminder = reminders.reminder_for_token(token)
    if reminder is None:
        response = _message(
            request,
            _("Unsubscribe"),
            _("This link is not valid (any more). You get no reminders through it."),
            status=404,
        )
    elif reminder.unsubscribed_at is not None:
        response = _message(
            request,
            _("Unsubscribed"),
            _("You will get no more reminders about “%(title)s”.")
            % {"title": reminder.session.title},
            back_url=reminder.page_url,
        )
    else:
        response = _message(
            request,
            _("Unsubscribe"),
            _("Stop e-mails about “%(title)s”?") % {"title": reminder.session.title},
            back_url=reminder.page_url,
            confirm_label=_("Unsubscribe"),
        )
    # The token is in this page's URL: no Referer carries it to the pages it links to.
    response["Referrer-Policy"] = "no-referrer"
    return response
