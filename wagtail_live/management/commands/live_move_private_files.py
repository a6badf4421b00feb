"""``manage.py live_move_private_files``: put every session's files where its privacy says."""

from django.core.management.base import BaseCommand

from wagtail_live.models import LiveSession
from wagtail_live.private_files import move_session_files
from wagtail_live.storage import private_root


class Command(BaseCommand):
    help = (
        "Move live HLS and recording sources from MEDIA_ROOT to WAGTAIL_LIVE['PRIVATE_ROOT'], "
        "and private sessions' recordings and posters out of the public media tree. "
        "Safe to run again: files already in place are left alone."
    )

    def handle(self, *args, **options):
        total = 0
        for session in LiveSession.objects.order_by("pk").iterator():
            moved = move_session_files(session)
            if moved:
                self.stdout.write(f"Session {session.pk}: moved {moved} file(s).")
            total += moved
        self.stdout.write(f"Done: {total} file(s) moved; private files live in {private_root()}.")
