import pytest
from django.contrib.auth import get_user_model


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("admin", "admin@example.com", "password")


@pytest.fixture
def editor(db):
    """A Wagtail editor who can use the admin and edit live sessions, but owns none."""
    from tests.utils import make_editor

    return make_editor("editor")


@pytest.fixture
def host(db):
    """An editor who will own the sessions made with ``session``."""
    from tests.utils import make_editor

    return make_editor("host")


@pytest.fixture
def viewer(db):
    """A signed-in visitor with no admin rights."""
    return get_user_model().objects.create_user("viewer", "viewer@example.com", "password")


@pytest.fixture
def moderator(db):
    """An editor who may moderate the chat of every session."""
    from tests.utils import make_editor

    return make_editor("moderator", "moderate_chat")


@pytest.fixture
def session(host):
    from tests.utils import make_session

    return make_session(owner=host)


@pytest.fixture(autouse=True)
def forget_blocked_terms():
    """Drop the blocked-terms cache after each test: rolling back a test's BlockedTerm rows
    sends no delete signal, so the cache would otherwise outlive them into later tests."""
    yield
    from wagtail_live import chat

    chat._forget_blocked_terms()
