"""CSV exports neutralise cells a spreadsheet would run as formulas (OWASP CSV injection)."""

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.utils import make_editor, make_session
from wagtail_live.exports import csv_writer, spreadsheet_safe
from wagtail_live.models import ViewerSample

FORMULAS = [
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    '=HYPERLINK("http://evil.example","x")',
]


@pytest.mark.parametrize("text", FORMULAS)
def test_formula_starts_get_a_leading_quote(text):
    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("value", ["Open day", "a=b", "", " =x", "'quoted", "1-2"])
def test_ordinary_text_is_unchanged(value):
    assert spreadsheet_safe(value) == value


@pytest.mark.parametrize("value", [None, 5, -3, 2.5, -0.5, True])
def test_numbers_are_not_text(value):
    assert spreadsheet_safe(value) == value


def test_csv_writer_neutralises_every_cell():
    out = io.StringIO()
    csv_writer(out).writerow(["=1+1", "fine", -4, "@x"])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == ["'=1+1", "fine", "-4", "'@x"]


def report_rows(client):
    response = client.get(reverse("wagtail_live_report:index") + "?export=csv")
    assert response.status_code == 200
    content = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(content)))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


@pytest.mark.django_db
@pytest.mark.parametrize("title", FORMULAS)
def test_report_csv_neutralises_titles(client, superuser, host, title):
    session = make_session(title, owner=host)
    session.start()
    client.force_login(superuser)
    (row,) = report_rows(client)
    assert row["Title"] == "'" + title
    assert row["Likes"] == "0"  # numbers stay numbers


@pytest.mark.django_db
def test_report_csv_neutralises_the_hosts_name(client, superuser):
    evil_host = make_editor("=evil")
    session = make_session("Plain", owner=evil_host)
    session.start()
    client.force_login(superuser)
    (row,) = report_rows(client)
    assert row["Title"] == "Plain"
    assert row["Host"] == "'=evil"


@pytest.mark.django_db
def test_report_xlsx_keeps_formulas_as_text(client, superuser, host):
    from openpyxl import load_workbook

    make_session("=1+1", owner=host).start()
    client.force_login(superuser)
    response = client.get(reverse("wagtail_live_report:index") + "?export=xlsx")
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    cell = sheet.cell(row=2, column=1)
    assert cell.value == "=1+1" and cell.data_type == "s"


@pytest.mark.django_db
def test_samples_csv_has_only_safe_cells(client, host):
    session = make_session("=cmd|calc", owner=host)
    session.start()
    ViewerSample.objects.create(
        session=session, at=timezone.now() + timedelta(seconds=1), viewers=3
    )
    client.force_login(host)
    response = client.get(reverse("wagtail_live_admin:analytics_csv", args=[session.pk]))
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["at", "viewers", "unique_viewers"]
    assert rows[1][1] == "3"
    assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for row in rows for cell in row)
