"""Spreadsheet exports that a spreadsheet program cannot run as formulas.

Every CSV the app writes goes through ``spreadsheet_safe`` (via ``csv_writer``
or ``SafeSpreadsheetExportMixin``): a cell a user could have typed (a session
title, a host's name) that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is read by Excel, LibreOffice and Google Sheets as a formula
(OWASP "CSV Injection"), so it gets a leading ``'``, which they show as text.
"""

import csv
import datetime
from decimal import Decimal

#: First characters spreadsheet programs treat as the start of a formula (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Values that are numbers or dates, not text someone typed: written as they are.
_NOT_TEXT = (bool, int, float, Decimal, datetime.date, datetime.time, datetime.timedelta)


def spreadsheet_safe(value):
    """``value`` made safe for one CSV cell: text starting a formula gets a leading ``'``.

    Numbers, dates and None are returned unchanged (a negative number is a
    number, not a formula); anything else is treated as text.
    """
    if value is None or isinstance(value, _NOT_TEXT):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


class SafeCSVWriter:
    """``csv.writer`` whose ``writerow`` passes every cell through ``spreadsheet_safe``."""

    def __init__(self, out, **kwargs):
        self._writer = csv.writer(out, **kwargs)

    def writerow(self, row):
        return self._writer.writerow([spreadsheet_safe(cell) for cell in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def csv_writer(out, **kwargs):
    """A CSV writer on file-like ``out`` (arguments as ``csv.writer``) that neutralises formulas."""
    return SafeCSVWriter(out, **kwargs)


class SafeSpreadsheetExportMixin:
    """For Wagtail's ``SpreadsheetExportMixin`` views (reports, ``list_export``): safe CSV cells.

    Wagtail already writes XLSX formula-looking cells as text; its CSV does
    not, so each CSV cell is passed through ``spreadsheet_safe`` here.
    """

    def write_csv_row(self, writer, row_dict):
        return writer.writerow(
            {field: self._safe_csv_cell(field, value) for field, value in row_dict.items()}
        )

    def _safe_csv_cell(self, field, value):
        cell = self.preprocess_field_value(field, value, self.FORMAT_CSV)
        if value is None or isinstance(value, _NOT_TEXT):
            return cell  # a number or date (which Wagtail may write as text): not a formula
        return spreadsheet_safe(cell)
