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
def session(host):
    from tests.utils import make_session

    return make_session(owner=host)
