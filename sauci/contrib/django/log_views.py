"""The log pages of the SauCI UI: the viewer, byte ranges, search, raw text,
timestamps and the live stream (server-sent events).

Logs are read through :class:`sauci.contrib.django.logs.LogSource`, from the
file on disk when it is on this machine, else from the store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.views.decorators.http import require_GET

from sauci.contrib.django import conf
from sauci.contrib.django.log_errors import first_error
from sauci.contrib.django.logs import LogSource, sse
from sauci.contrib.django.view_support import (
    MAX_ID,
    BadParameter,
    _build_or_404,
    _ctx,
    _step_or_404,
    bad_request,
    int_param,
    viewer,
)
from sauci.exceptions import SauCIError

__all__ = ["log_page", "log_range", "log_raw", "log_search", "log_stream", "log_timestamps"]


@require_GET
@viewer
def log_page(request: HttpRequest, build_id: int, step: str) -> HttpResponse:
    build = _build_or_404(build_id)
    run = _step_or_404(build_id, step)
    source = LogSource(conf.get_store(), run)
    size = source.size()
    live = not run.status.done
    end = size
    if live:
        # Show complete lines only; the follower sends the rest as it completes.
        tail = source.read(max(0, size - 64 * 1024), 64 * 1024)
        cut = tail.rfind(b"\n")
        end = size - len(tail) + cut + 1 if cut >= 0 else max(0, size - len(tail))
    start = source.line_start_after(max(0, end - conf.config()["LOG_TAIL_BYTES"]))
    html, first = (
        source.range_html(start, end) if end > start else ("", source.lines_before(start) + 1)
    )
    error_line = error_offset = None
    if run.status.value in ("failed", "errored") and size:
        # The first error line among the last 16 tails (4 MiB by default: a
        # scan of about 15 ms), within reach of the page's "load from" (32 tails).
        reach = source.line_start_after(max(0, start - 15 * conf.config()["LOG_TAIL_BYTES"]))
        error_offset = first_error(source, reach, end)
        if error_offset is not None:
            error_line = source.lines_before(error_offset) + 1
    steps = conf.get_store().list_steps(build_id)
    return render(
        request,
        "sauci/log.html",
        _ctx(
            request,
            build=build,
            step=run,
            steps=steps,
            log_html=html,
            start=start,
            end=end,
            size=size,
            first_line=first,
            live=live,
            error_line=error_line,
            error_offset=error_offset,
            failed=run.status.value in ("failed", "errored"),
            # The .ts sidecar sits next to a log file; a log only in the store has none.
            timestamps_available=source.path is not None,
            # The log file on disk no longer matches its step's log (sauci.core.logfile).
            log_problem=source.problem,
        ),
    )


@require_GET
@viewer
def log_range(request: HttpRequest, build_id: int, step: str) -> HttpResponse:
    """Lines before byte ``end`` (about LOG_TAIL_BYTES of them), as JSON with HTML."""
    run = _step_or_404(build_id, step)
    try:
        end = int_param(request.GET.get("end"), "end (a byte offset)")
        wanted = int_param(request.GET.get("start"), "start (a byte offset)", default=-1)
    except BadParameter as exc:
        return bad_request(exc)
    source = LogSource(conf.get_store(), run)
    end = min(end, source.size())
    tail = conf.config()["LOG_TAIL_BYTES"]
    if wanted >= 0:
        # A search result before the loaded part: everything from its line on,
        # so the page stays one contiguous range; bounded to 32 tails.
        if end - wanted > 32 * tail:
            return JsonResponse({"error": "too far before the loaded part"}, status=400)
        start = source.line_start_after(wanted)
    else:
        start = source.line_start_after(max(0, end - tail))
    if start >= end:
        start = max(0, end - tail)
    html, first = source.range_html(start, end) if end > start else ("", 1)
    return JsonResponse({"start": start, "end": end, "first_line": first, "html": html})


@require_GET
@viewer
def log_search(request: HttpRequest, build_id: int, step: str) -> HttpResponse:
    """Lines of the whole log holding ``q`` (plain text, any case), from ``after`` on, as JSON.

    Scans the file (or the store's chunks) piece by piece, at most
    LOG_SEARCH_BYTES per request; ``next`` is where to continue, or null.
    """
    run = _step_or_404(build_id, step)
    source = LogSource(conf.get_store(), run)
    if source.path is None and source.size() == 0:
        raise Http404(f"build {build_id} step {step!r} has no log")
    needle = request.GET.get("q", "")
    try:
        after = int_param(request.GET.get("after"), "after (a byte offset)", default=0)
    except BadParameter as exc:
        return bad_request(exc)
    if not needle or len(needle) > 1000:
        return HttpResponseBadRequest("q must be 1 to 1000 characters")
    result = source.search(needle, after, max_bytes=conf.config()["LOG_SEARCH_BYTES"])
    return JsonResponse(result)


@require_GET
@viewer
def log_raw(request: HttpRequest, build_id: int, step: str) -> HttpResponse:
    run = _step_or_404(build_id, step)
    source = LogSource(conf.get_store(), run)
    name = f"build-{build_id}-{''.join(c if c.isalnum() or c in '-_.' else '_' for c in step)}.log"
    if source.path is not None:
        response: HttpResponse = FileResponse(
            open(source.path, "rb"),  # noqa: SIM115 - FileResponse closes it
            content_type="text/plain; charset=utf-8",
            as_attachment="download" in request.GET,
            filename=name,
        )
    else:
        size = source.size()

        def chunks() -> Iterator[bytes]:
            offset = 0
            while offset < size:
                data = source.read(offset, min(1 << 20, size - offset))
                if not data:
                    return
                offset += len(data)
                yield data

        response = StreamingHttpResponse(chunks(), content_type="text/plain; charset=utf-8")
        if "download" in request.GET:
            response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@require_GET
@viewer
def log_timestamps(request: HttpRequest, build_id: int, step: str) -> HttpResponse:
    """The ``.ts`` sidecar's (offset, epoch) pairs covering bytes [start, end)."""
    from sauci.core.logsink import read_timestamps

    run = _step_or_404(build_id, step)
    source = LogSource(conf.get_store(), run)
    try:
        start = int_param(request.GET.get("start"), "start (a byte offset)", default=0)
        end = int_param(request.GET.get("end"), "end (a byte offset)", default=MAX_ID)
    except BadParameter as exc:
        return bad_request(exc)
    pairs = read_timestamps(source.path) if source.path is not None else []
    out: list[tuple[int, float]] = []
    for offset, at in pairs:
        if offset < start:
            out[:] = [(offset, at)]  # the piece the range starts in
        elif offset < end:
            out.append((offset, at))
        else:
            break
    return JsonResponse({"timestamps": out, "available": source.path is not None})


@require_GET
@viewer
def log_stream(request: HttpRequest, build_id: int, step: str) -> HttpResponse:
    """Server-sent events with the log's new complete lines, rendered, as they arrive.

    One response lasts at most LOG_STREAM_SECONDS; the browser's EventSource
    reconnects with Last-Event-ID (the byte offset reached), so no server
    thread is held forever and nothing is sent twice.
    """
    run = _step_or_404(build_id, step)
    try:
        if request.headers.get("Last-Event-ID"):
            offset = int_param(request.headers["Last-Event-ID"], "Last-Event-ID (a byte offset)")
        else:
            offset = int_param(request.GET.get("offset"), "offset (a byte offset)", default=0)
    except BadParameter as exc:
        return bad_request(exc)
    store = conf.get_store()
    source = LogSource(store, run)
    size = source.size()
    if offset > size:
        # Every offset the stream sends is one it has read up to: a larger one
        # was not sent by it (and reading up to it would be a huge read).
        return bad_request(
            BadParameter(f"offset {offset} is past the end of the log ({size} bytes)")
        )
    limit = conf.config()["LOG_STREAM_SECONDS"]

    def events() -> Iterator[bytes]:
        nonlocal offset
        line = source.lines_before(offset) + 1
        yield b"retry: 500\n\n"
        deadline = time.monotonic() + limit
        next_check = 0.0
        interval = 0.05 if source.path is not None else 0.25
        done = run.status.done
        quiet = time.monotonic()
        while True:
            now = time.monotonic()
            if not done and now >= next_check:
                next_check = now + 0.5
                try:
                    done = store.get_build(build_id).status.done or any(
                        s.name == step and s.status.done for s in store.list_steps(build_id)
                    )
                except SauCIError:
                    done = True
            size = source.size()
            if size > offset:
                data = source.read(offset, min(size - offset, 1 << 20))
                cut = data.rfind(b"\n")
                if cut < 0 and not done and len(data) < (1 << 20):
                    data = b""  # wait for the line to complete
                elif cut >= 0 and not (done and size - offset == len(data)):
                    data = data[: cut + 1]
                if data:
                    from sauci.contrib.django.logs import render_lines

                    html = render_lines(data, line, offset)
                    line += data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
                    offset += len(data)
                    quiet = now
                    yield sse("lines", {"html": html, "offset": offset}, offset)
                    continue
            if done and source.size() <= offset:
                yield sse("end", {"offset": offset}, offset)
                return
            if now > deadline:
                return
            if now - quiet > 10:
                quiet = now
                yield b": keep-alive\n\n"
            time.sleep(interval)

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
