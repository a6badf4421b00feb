"""*Live → Webhooks* (a ``ModelViewSet``) with *Send test*, and the read-only delivery log."""

import json

from django import forms
from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views import View
from wagtail.admin.ui.tables import Column, DateColumn, StatusTagColumn
from wagtail.admin.views import generic
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.admin.widgets.button import HeaderButton
from wagtail.permission_policies import ModelPermissionPolicy

try:
    from wagtail.permissions import register_permission_policy
except ImportError:  # Wagtail 7.4: viewsets carry their permission policy themselves
    register_permission_policy = None

from .. import webhooks
from ..models import Webhook, WebhookDelivery


class WebhookPolicy(ModelPermissionPolicy):
    """Webhooks carry secrets and make the server call out: superusers only, unless granted."""

    def user_has_permission(self, user, action):
        if not user.is_active:
            return False
        return user.is_superuser or super().user_has_permission(user, action)


class DeliveryPolicy(WebhookPolicy):
    """The log is read-only: attempts are made by the queue, never edited."""

    def user_has_permission(self, user, action):
        if action != "view":
            return False
        return user.is_active and (
            user.is_superuser or user.has_perm("wagtail_live.change_webhook")
        )


if register_permission_policy is not None:
    register_permission_policy(Webhook, WebhookPolicy(Webhook))
    register_permission_policy(WebhookDelivery, DeliveryPolicy(WebhookDelivery))


class WebhookForm(forms.ModelForm):
    url = forms.URLField(
        label=_("URL"),
        max_length=500,
        assume_scheme="https",
        help_text=Webhook._meta.get_field("url").help_text,
    )
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=Webhook.Event.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The receiver is told about these events."),
    )

    class Meta:
        model = Webhook
        fields = ["name", "url", "secret", "events", "active"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        webhooks.check_url(url)
        return url


class WebhookEditView(generic.EditView):
    @property
    def header_buttons(self):
        buttons = list(super().header_buttons)
        buttons.append(
            HeaderButton(
                _("Delivery log"),
                url=reverse("wagtail_live_webhook_deliveries:index") + f"?webhook={self.object.pk}",
                icon_name="list-ul",
            )
        )
        return buttons


class SendTestView(View):
    """POST: queue a ``webhook.test`` delivery; the log shows how it went."""

    def post(self, request, pk):
        webhook = get_object_or_404(Webhook, pk=pk)
        policy = WebhookPolicy(Webhook)
        if not policy.user_has_permission(request.user, "change"):
            messages.error(request, _("You may not send test webhooks."))
            return redirect("wagtail_live_webhooks:index")
        webhooks.send_test(webhook)
        messages.success(
            request,
            _("A test event is on its way to “%(name)s”; see the delivery log for the answer.")
            % {"name": webhook.name},
        )
        return redirect(reverse("wagtail_live_webhook_deliveries:index") + f"?webhook={pk}")

    def get(self, request, pk):
        return HttpResponseNotAllowed(["POST"])


class SendTestColumn(Column):
    cell_template_name = "wagtail_live/admin/webhook_send_test_cell.html"

    def get_cell_context_data(self, instance, parent_context):
        context = super().get_cell_context_data(instance, parent_context)
        context["send_test_url"] = reverse("wagtail_live_webhooks:send_test", args=[instance.pk])
        context["csrf_token"] = get_token(parent_context["request"])
        return context


class EventsColumn(Column):
    def get_value(self, instance):
        labels = dict(Webhook.Event.choices)
        return ", ".join(str(labels.get(event, event)) for event in instance.events or [])


class WebhookViewSet(ModelViewSet):
    """*Live → Webhooks*: URL, secret, events, active; *Send test*; the delivery log."""

    model = Webhook
    form_class = WebhookForm
    if register_permission_policy is None:
        permission_policy = WebhookPolicy(Webhook)
    icon = "link-external"
    name = "wagtail_live_webhooks"
    url_prefix = "live/webhooks"
    menu_label = _("Webhooks")
    add_to_admin_menu = False
    copy_view_enabled = False
    edit_view_class = WebhookEditView
    list_display = [
        "name",
        Column("url", label=_("URL")),
        EventsColumn("events", label=_("Events")),
        Column("active", label=_("Active")),
        SendTestColumn("send_test", label=_("Test")),
    ]
    search_fields = ["name", "url"]

    def get_form_class(self, for_update=False):
        return WebhookForm

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [
            path("send-test/<int:pk>/", SendTestView.as_view(), name="send_test"),
        ]


class DeliveryIndexView(generic.IndexView):
    def get_base_queryset(self):
        return super().get_base_queryset().select_related("webhook")


def delivered_session(delivery):
    """The ``session`` object the delivery's body carried (``{"id", "title", ...}``), or None.

    Read from the body, as sent, so the log still names a session that was deleted since.
    """
    try:
        session = json.loads(delivery.body).get("session")
    except (ValueError, AttributeError):
        return None
    return session if isinstance(session, dict) and session.get("title") else None


class DeliverySessionColumn(Column):
    """The session the event was about, linked to its edit view."""

    cell_template_name = "wagtail_live/admin/webhook_session_cell.html"

    def get_value(self, instance):
        return delivered_session(instance)

    def get_cell_context_data(self, instance, parent_context):
        context = super().get_cell_context_data(instance, parent_context)
        session = context["value"]
        context["session_title"] = session["title"] if session else None
        context["session_url"] = (
            reverse("wagtailsnippets_wagtail_live_livesession:edit", args=[session["id"]])
            if session and isinstance(session.get("id"), int)
            else None
        )
        return context


class WebhookDeliveryViewSet(ModelViewSet):
    """*Live → Webhook deliveries*: every attempt with its answer, time taken and next retry."""

    model = WebhookDelivery
    if register_permission_policy is None:
        permission_policy = DeliveryPolicy(WebhookDelivery)
    icon = "history"
    name = "wagtail_live_webhook_deliveries"
    url_prefix = "live/webhook-deliveries"
    menu_label = _("Webhook deliveries")
    add_to_admin_menu = False
    copy_view_enabled = False
    inspect_view_enabled = True
    index_view_class = DeliveryIndexView
    form_fields = ["state"]
    list_filter = ["webhook", "state", "event"]
    ordering = ["-created_at"]
    list_display = [
        Column("event", label=_("Event")),
        DeliverySessionColumn("session", label=_("Session")),
        Column("webhook", label=_("Webhook")),
        Column("attempt", label=_("Attempt")),
        StatusTagColumn(
            "state",
            label=_("State"),
            accessor="get_state_display",
            primary=lambda delivery: delivery.state == WebhookDelivery.State.SUCCEEDED,
        ),
        Column("status_code", label=_("Answer")),
        Column("error", label=_("Error")),
        Column("duration_ms", label=_("ms")),
        DateColumn("attempted_at", label=_("Attempted")),
        DateColumn("next_retry_at", label=_("Next retry")),
    ]
    inspect_view_fields = [
        "webhook",
        "delivery_id",
        "event",
        "attempt",
        "state",
        "created_at",
        "due_at",
        "attempted_at",
        "status_code",
        "error",
        "duration_ms",
        "next_retry_at",
        "body",
    ]
