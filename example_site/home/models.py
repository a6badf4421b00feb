"""The example site's one page type: a home page whose body can hold live players and the schedule."""

from wagtail import blocks
from wagtail.admin.panels import FieldPanel
from wagtail.fields import StreamField
from wagtail.models import Page

from wagtail_live.blocks import LivePlayerBlock, UpcomingLiveBlock


class HomePage(Page):
    body = StreamField(
        [
            ("heading", blocks.CharBlock(form_classname="title")),
            ("paragraph", blocks.RichTextBlock()),
            ("live_player", LivePlayerBlock()),
            ("upcoming_live", UpcomingLiveBlock()),
        ],
        blank=True,
    )

    content_panels = [*Page.content_panels, FieldPanel("body")]
