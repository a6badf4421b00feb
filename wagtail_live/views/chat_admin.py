"""Chat administration: the ban list, the chat message browser and blocked terms (the *Live* menu)."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from wagtail.admin.ui.tables import Column, DateColumn
from wagtail.admin.views import generic
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.permission_policies import ModelPermissionPolicy

try:
    from wagtail.permissions import register_permission_policy
except ImportError:  # Wagtail 7.4: viewsets carry their permission policy themselves
    register_permission_policy = None
from wagtail.snippets.views.snippets import SnippetViewSet

from .. import chat, permissions
from ..models import BlockedTerm, ChatBan, ChatMessage


class ModeratorPolicy(ModelPermissionPolicy):
    """Site-wide moderators (``permissions.can_moderate_site``) may do ``actions`` here."""

    def __init__(self, model, actions=("add", "change", "delete", "view")):
        super().__init__(model)
        self.actions = set(actions)

    def user_has_permission(self, user, action):
        return permissions.can_moderate_site(user) and action in self.actions

    def user_has_any_permission(self, user, actions):
        return any(self.user_has_permission(user, action) for action in actions)


# Bans are made and lifted through the chat services, never edited in a form.
BAN_POLICY = ModeratorPolicy(ChatBan, actions=["add", "delete", "view"])
# Read-only: messages change only through moderation (remove), never by editing.
MESSAGE_POLICY = ModeratorPolicy(ChatMessage, actions=["view"])

if register_permission_policy is not None:
    register_permission_policy(ChatBan, BAN_POLICY)
    register_permission_policy(ChatMessage, MESSAGE_POLICY)


# -- ban list ----------------------------------------------------------------


class BanForm(forms.ModelForm):
    target_user = forms.ModelChoiceField(
        label=_("User"), queryset=get_user_model().objects.filter(is_active=True)
    )

    class Meta:
        model = ChatBan
        fields = ["target_user", "reason"]


class BanCreateView(generic.CreateView):
    """Ban a user from the ban list (the same service as the dashboard's *Ban* button)."""

    def form_valid(self, form):
        try:
            chat.ban(
                self.request.user, form.cleaned_data["target_user"].pk, form.cleaned_data["reason"]
            )
        except chat.ChatError as error:
            # A bad reason (control characters, a bidi override) is shown on its own field.
            field = "reason" if error.data.get("field") == "reason" else "target_user"
            form.add_error(field, error.message)
            self.produced_error_message = error.message
            return self.form_invalid(form)
        messages.success(self.request, _("The user is banned from every live chat."))
        return redirect(self.index_url_name)


class BanIndexView(generic.IndexView):
    def get_list_more_buttons(self, instance):
        # The delete view lifts the ban: call it what it does.
        buttons = super().get_list_more_buttons(instance)
        for button in buttons:
            if button.url == reverse(self.delete_url_name, args=[instance.pk]):
                button.label = _("Unban")
                button.icon_name = "undo"
        return buttons


class UnbanView(generic.DeleteView):
    """The ban list's *Unban*: lifts the ban (the record stays, for the log)."""

    page_title = _("Unban")

    def get_page_subtitle(self):
        return str(self.object.target_user)

    @property
    def confirmation_message(self):
        return _("Let %(user)s chat again?") % {"user": self.object.target_user}

    def delete_action(self):
        try:
            chat.unban(self.request.user, self.object.target_user_id)
        except chat.ChatError as error:
            raise PermissionDenied(error.message) from error

    def get_success_message(self):
        return _("%(user)s may chat again.") % {"user": self.object.target_user}


class BanViewSet(ModelViewSet):
    if register_permission_policy is None:
        permission_policy = BAN_POLICY
    """*Live → Bans*: who is banned, why, by whom and when; search; unban."""

    model = ChatBan
    icon = "cross"
    name = "wagtail_live_bans"
    url_prefix = "live/bans"
    menu_label = _("Chat bans")
    add_to_admin_menu = False
    copy_view_enabled = False
    index_view_class = BanIndexView
    add_view_class = BanCreateView
    delete_view_class = UnbanView
    list_display = [
        "target_user",
        Column("reason", label=_("Reason")),
        Column("moderator", label=_("Banned by")),
        DateColumn("created_at", label=_("When")),
        Column("session", label=_("During")),
    ]
    search_fields = ["target_user__username", "target_user__email", "reason"]
    ordering = ["-created_at"]

    def get_form_class(self, for_update=False):
        return BanForm


# -- chat message browser ----------------------------------------------------


class RemovedColumn(Column):
    def get_value(self, instance):
        return _("Removed") if instance.is_removed else ""


class ChatMessageViewSet(ModelViewSet):
    if register_permission_policy is None:
        permission_policy = MESSAGE_POLICY
    """*Live → Chat messages*: every message, filterable by session and removed, read-only."""

    model = ChatMessage
    icon = "comment"
    name = "wagtail_live_chat_messages"
    url_prefix = "live/chat-messages"
    menu_label = _("Chat messages")
    add_to_admin_menu = False
    copy_view_enabled = False
    inspect_view_enabled = True
    list_display = [
        Column("display_name", label=_("From")),
        Column("text", label=_("Message")),
        Column("session", label=_("Session")),
        DateColumn("created_at", label=_("Sent")),
        RemovedColumn("removed", label=_("Status")),
    ]
    list_filter = {"session": ["exact"], "removed_at": ["isnull"]}
    search_fields = ["text", "display_name"]
    form_fields = ["text"]


# -- blocked terms -----------------------------------------------------------


class BlockedTermViewSet(SnippetViewSet):
    """*Live → Blocked terms*: words and phrases the chat refuses (case-insensitive)."""

    model = BlockedTerm
    icon = "warning"
    menu_label = _("Blocked terms")
    list_display = ["term", DateColumn("created_at", label=_("Added"))]
    search_fields = ["term"]
    search_backend_name = None
