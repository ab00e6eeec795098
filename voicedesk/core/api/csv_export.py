"""CSV downloads that stream in constant memory and are safe to open in a spreadsheet.

RFC 4180 quoting comes from the ``csv`` module. A cell that a spreadsheet
would read as a formula (it starts with ``= + - @``, a tab or a carriage
return) gets a leading apostrophe: callers' words end up in these files.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from voicedesk.core.tenancy import current_schema

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CHUNK_CHARS = 64 * 1024
# Rows fetched per database round trip by the exports' server-side cursors.
EXPORT_CHUNK_SIZE = 2000


def export_filename(kind: str) -> str:
    """``<kind>-<schema>-<today>.csv``: which business and which day, for whoever finds the file later."""
    return f"{kind}-{current_schema()}-{timezone.now().date().isoformat()}.csv"


def csv_cell(value: object) -> str:
    """One cell as text, defused if a spreadsheet would evaluate it."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, list | tuple):
        text = ", ".join(str(item) for item in value)
    else:
        text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


class _Echo:
    """A file-like object that hands back what the csv writer writes, line by line."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([csv_cell(name) for name in header])
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


def _chunks(lines: Iterable[str], size: int = CHUNK_CHARS) -> Iterator[bytes]:
    # One write per line would make a large export slow; one per ~64 KB keeps memory flat.
    buffer: list[str] = []
    length = 0
    for line in lines:
        buffer.append(line)
        length += len(line)
        if length >= size:
            yield "".join(buffer).encode()
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer).encode()


class CsvStreamingResponse(StreamingHttpResponse):
    """Streams a synchronous iterator under ASGI too, one chunk at a time.

    Django's own fallback for a synchronous iterator under ASGI reads it
    into a list first, which would hold the whole export in memory. Each
    chunk is pulled on the request's thread, where its database cursor lives.
    """

    async def __aiter__(self) -> AsyncIterator[bytes]:
        iterator = self.streaming_content
        if not isinstance(iterator, Iterator):
            async for part in iterator:
                yield part
            return
        pull = sync_to_async(_next_chunk, thread_sensitive=True)
        while (chunk := await pull(iterator)) is not None:
            yield chunk


def _next_chunk(iterator: Iterator[bytes]) -> bytes | None:
    return next(iterator, None)


def csv_response(*, filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> CsvStreamingResponse:
    response = CsvStreamingResponse(_chunks(csv_lines(header, rows)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


class CsvRenderer(BaseRenderer):
    """Names the CSV media type for content negotiation and the schema; the views stream the body."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        if data is None:
            return b""
        return json.dumps(data).encode()


class CsvOnlyNegotiation(BaseContentNegotiation):
    """An export is CSV whatever the client's ``Accept`` says."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type
