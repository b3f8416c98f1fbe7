"""How a stream ends when the model crashes or the deadline passes: one error event, in the
OpenAI error shape, for token streams and translation streams alike."""
from __future__ import annotations

import asyncio
import json
import time

from genlab.serve.app import _next_event


def _run(events: list[tuple], deadline_in: float) -> tuple | str:
    async def go() -> tuple | str:
        queue: asyncio.Queue = asyncio.Queue()
        for e in events:
            queue.put_nowait(e)
        return await _next_event(queue, time.monotonic() + deadline_in, 7.0)
    return asyncio.run(go())


def _error(line: str) -> dict:
    assert line.startswith("data: ") and line.endswith("\n\n")
    return json.loads(line[len("data: "):])["error"]


def test_events_pass_through_in_both_shapes():
    assert _run([(2, "text", "abc")], 5.0) == (2, "text", "abc")
    assert _run([("done", None)], 5.0) == ("done", None)


def test_a_crash_ends_the_stream_with_a_server_error():
    for event in ((0, "error", "internal error: boom"), ("error", "internal error: boom")):
        err = _error(_run([event], 5.0))
        assert err["type"] == "server_error" and err["message"] == "internal error: boom"


def test_the_deadline_ends_the_stream_with_a_timeout():
    start = time.monotonic()
    err = _error(_run([], 0.2))
    assert time.monotonic() - start < 2
    assert err["type"] == "timeout_error" and err["code"] == "timeout"
    assert err["message"] == "generation took longer than 7 s"
    err = _error(_run([], -1.0))      # already past: no wait at all
    assert err["code"] == "timeout"
