"""CSV cells, lines and the streaming response."""

import csv
import io
from datetime import UTC, datetime

import pytest
import time_machine
from asgiref.sync import async_to_sync

from voicedesk.core.api.csv_export import CsvStreamingResponse, csv_cell, csv_lines, csv_response, export_filename


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+15551234567", "'+15551234567"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tindented", "'\tindented"),
        ("\rcarriage", "'\rcarriage"),
        ("plain = text", "plain = text"),
        (None, ""),
        (True, "true"),
        (12, "12"),
        (["leak", "urgent"], "leak, urgent"),
        (datetime(2030, 11, 25, 10, 0, tzinfo=UTC), "2030-11-25T10:00:00+00:00"),
    ],
)
def test_cells_are_text_and_formulas_are_defused(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_lines_follow_rfc_4180() -> None:
    lines = list(csv_lines(["a", "b"], [["x,y", 'say "hi"'], ["two\nlines", "=1+1"], ["ünïcode", None]]))

    assert lines == ["a,b\r\n", '"x,y","say ""hi"""\r\n', '"two\nlines",\'=1+1\r\n', "ünïcode,\r\n"]
    assert list(csv.reader(io.StringIO("".join(lines), newline=""))) == [
        ["a", "b"],
        ["x,y", 'say "hi"'],
        ["two\nlines", "'=1+1"],
        ["ünïcode", ""],
    ]


def test_the_response_is_a_utf8_attachment() -> None:
    response = csv_response(filename="tickets-alpha-2030-11-25.csv", header=["name"], rows=[["Zoë"]])

    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="tickets-alpha-2030-11-25.csv"'
    assert b"".join(response.streaming_content) == "name\r\nZoë\r\n".encode()


def test_rows_are_read_lazily_in_chunks_of_about_64_kb() -> None:
    produced: list[int] = []

    def rows():
        for i in range(5000):
            produced.append(i)
            yield [i, "x" * 40]

    response = csv_response(filename="f.csv", header=["i", "text"], rows=rows())
    chunks = iter(response.streaming_content)
    first = next(chunks)

    assert len(produced) < 5000  # the first chunk went out before all rows were read
    assert 64 * 1024 <= len(first) < 64 * 1024 + 100
    rest = b"".join(chunks)
    assert len(produced) == 5000
    assert (first + rest).count(b"\r\n") == 5001


def test_under_asgi_chunks_are_pulled_one_at_a_time() -> None:
    pulled: list[int] = []

    def parts():
        for i in range(3):
            pulled.append(i)
            yield f"part{i}".encode()

    response = CsvStreamingResponse(parts())

    async def consume() -> list[tuple[bytes, int]]:
        seen = []
        async for chunk in response:
            seen.append((chunk, len(pulled)))
        return seen

    # Each chunk reaches the server when only it has been produced: nothing is read ahead into a list.
    assert async_to_sync(consume)() == [(b"part0", 1), (b"part1", 2), (b"part2", 3)]


@time_machine.travel(datetime(2030, 11, 25, 23, 30, tzinfo=UTC), tick=False)
@pytest.mark.django_db
def test_an_export_is_named_after_the_kind_the_business_and_the_day(in_tenant_a) -> None:
    assert export_filename("tickets") == "tickets-alpha-2030-11-25.csv"
