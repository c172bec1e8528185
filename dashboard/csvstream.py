"""A CSV download written as its rows are read, never all in memory: a
month of history is tens of thousands of rows."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from aiohttp import web

ROWS_PER_WRITE = 500


async def stream_csv(request: web.Request, name: str, columns, rows) -> web.StreamResponse:
    """`rows` yields lists of cells; the file is called lonewatch-NAME-<now>.csv."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="lonewatch-{name}-{datetime.now():%Y%m%d-%H%M}.csv"'})
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # spreadsheets then read the file as UTF-8
    writer.writerow(columns)
    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % ROWS_PER_WRITE == 0:
            await response.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
    await response.write(buffer.getvalue().encode())
    await response.write_eof()
    return response
