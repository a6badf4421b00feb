from tests.ingest.test_nginx import *  # noqa

@pytest.mark.services
def test_status(nginx):
    session, key = session_with_key()
    encoder = push(nginx, key, seconds=3)
    assert encoder.wait(20) == 0
    wait_until(lambda: Recording.objects.filter(session=session, status__in=DONE).exists())
    r = Recording.objects.get(session=session)
    print("STATUS", r.status, r.error)
