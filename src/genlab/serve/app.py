"""The HTTP API: OpenAI-compatible endpoints, a genlab endpoint for any output, health, metrics, the page.

    GET  /v1/models                    every model id (run names), with a `genlab` field per model
    POST /v1/completions               text models; `stream: true` for server-sent events. Text-to-text
                                       models (translation): each prompt's output (beam search, `beam`
                                       to choose; a stream is greedy)
    POST /v1/chat/completions          text models, through the model's chat template; text-to-text
                                       models: the output of the last user message
    POST /v1/images/generations        models whose samples are Images; the prompt picks the class
    POST /genlab/v1/sample             any model: {"model", "options"} -> the typed output's to_json()
    GET  /health, GET /metrics         liveness; Prometheus text format
    GET  /                             the web page

Every error is a 4xx (or a 5xx for the server's own failures: a timeout, a crashed model) with
OpenAI's body: {"error": {"message", "type", "param", "code"}}.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import os
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, AsyncIterator, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import GenlabError
from ..outputs import Bundle, Images, Output
from .batching import Finished, Job, QueueFull, ShuttingDown
from .metrics import Metrics
from .models import ServedModel


@dataclass
class Limits:
    max_tokens: int = 1024        # cap on max_tokens per request
    max_n: int = 8                # cap on n (choices per prompt; images per request)
    max_prompt_tokens: int = 4096 # cap on prompt length, before the model's own context limit
    request_timeout: float = 300.0  # seconds for a whole request
    max_batch: int = 16           # rows decoded together per text model (1 = batching off)
    max_queue: int = 64           # sequences waiting per text model before 429


class APIError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}


def _error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _timeout(seconds: float) -> APIError:
    return APIError(504, f"generation took longer than {seconds:g} s", "timeout_error", code="timeout")


def _sse(body: Any) -> str:
    """One server-sent event."""
    return f"data: {json.dumps(body)}\n\n"


async def _next_event(events: asyncio.Queue, deadline: float, seconds: float) -> tuple | str:
    """The next (..., kind, payload) event of a stream, or the error event that ends the stream
    (the deadline passed, or the model crashed)."""
    try:
        event = await asyncio.wait_for(events.get(), deadline - time.monotonic())
    except (asyncio.TimeoutError, ValueError):
        e = _timeout(seconds)
        return _sse(_error_body(e.message, e.type, code=e.code))
    if event[-2] == "error":
        return _sse(_error_body(event[-1], "server_error"))
    return event


def _event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# -- request bodies (strict: "0.5" is not a number, true is not an integer) -----------------------
class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class StreamOptions(_Body):
    include_usage: bool = False


class _TextBody(_Body):
    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    repetition_penalty: float = Field(default=1.0, gt=0, le=10)  # genlab's (and vLLM's) extension: CTRL's penalty
    n: int = Field(default=1, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None


class CompletionBody(_TextBody):
    prompt: str | list[str]


class Message(_Body):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class ChatBody(_TextBody):
    messages: list[Message] = Field(min_length=1)


class ImageBody(_Body):
    model: str
    prompt: str = ""
    n: int = Field(default=1, ge=1)
    response_format: Literal["b64_json"] = "b64_json"
    size: str | None = None
    seed: int | None = None


class SampleBody(_Body):
    model: str
    options: dict[str, Any] = Field(default_factory=dict)


UNSUPPORTED = ("logprobs", "top_logprobs", "echo", "best_of", "suffix", "presence_penalty", "frequency_penalty",
               "logit_bias", "tools", "functions", "response_format")


def _is_type_tag(part: str) -> bool:
    return part in ("str", "int", "float", "bool", "none") or "[" in part or part.startswith("function")


def _finish_reason(reason: str) -> str:
    return "length" if reason == "length" else "stop"  # eos and stop strings are both OpenAI's "stop"


def create_app(models: dict[str, ServedModel], api_key: str | None = None, limits: Limits | None = None) -> FastAPI:
    """The FastAPI app over already loaded models (genlab serve builds them from run directories)."""
    limits = limits or Limits()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for m in models.values():
            if m.batcher is not None:
                m.batcher.start()
        yield
        # graceful: no new requests, running generations get a few seconds to finish
        await asyncio.gather(*(asyncio.to_thread(m.batcher.stop, 5.0) for m in models.values() if m.batcher))

    app = FastAPI(title="genlab", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.models, app.state.metrics, app.state.limits = models, metrics, limits

    # -- errors: OpenAI's shape, never a traceback -----------------------------------------------
    @app.exception_handler(APIError)
    async def _api_error(request: Request, e: APIError) -> JSONResponse:
        return JSONResponse(_error_body(e.message, e.type, e.param, e.code), status_code=e.status, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        err = e.errors()[0]
        # drop "body" and the union member names pydantic adds ("prompt.str" -> "prompt")
        loc = [str(x) for x in err.get("loc", ()) if x != "body" and not _is_type_tag(str(x))]
        if err.get("type") == "json_invalid":
            return JSONResponse(_error_body(f"malformed JSON body: {err.get('msg')}", "invalid_request_error",
                                            None, "invalid_json"), status_code=400)
        param = ".".join(loc) or None
        msg = err.get("msg", "invalid request")
        if err.get("type") == "missing":
            msg = f"missing required parameter: {param}"
        elif param:
            msg = f"invalid value for {param}: {msg}"
        return JSONResponse(_error_body(msg, "invalid_request_error", param, err.get("type")), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        msg = "no such endpoint: " + request.url.path if e.status_code == 404 else str(e.detail)
        return JSONResponse(_error_body(msg, "invalid_request_error"), status_code=e.status_code)

    @app.exception_handler(Exception)
    async def _crash(request: Request, e: Exception) -> JSONResponse:
        return JSONResponse(_error_body(f"internal error: {type(e).__name__}: {e}", "server_error"),
                            status_code=500)

    @app.middleware("http")
    async def _auth_and_count(request: Request, call_next):
        start = time.monotonic()
        path = request.url.path
        guarded = path.startswith("/v1/") or path.startswith("/genlab/")
        given = request.headers.get("authorization", "").encode()
        if api_key and guarded and not hmac.compare_digest(given, f"Bearer {api_key}".encode()):
            response: Response = JSONResponse(
                _error_body("missing or wrong API key: send Authorization: Bearer KEY", "invalid_request_error",
                            None, "invalid_api_key"), status_code=401)
        else:
            response = await call_next(request)
        if guarded:
            metrics.request(path, response.status_code, time.monotonic() - start)
        return response

    def get_model(name: str, kind: str | None = None) -> ServedModel:
        if name not in models:
            raise APIError(404, f"the model {name!r} does not exist (available: {', '.join(models)})", param="model",
                           code="model_not_found")
        m = models[name]
        if kind == "text" and m.kind not in ("text", "text-to-text"):
            raise APIError(400, f"model {name!r} is not a text model (it is served by /v1/images/generations "
                           "or /genlab/v1/sample)", param="model", code="wrong_model_kind")
        return m

    # -- plain routes ------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files("genlab.serve").joinpath("page.html").read_text(encoding="utf-8"))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": list(models)}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(models), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "genlab",
                                            "genlab": m.describe()} for n, m in models.items()]}

    # -- text ---------------------------------------------------------------------------------------
    def refuse_unsupported(body: _TextBody) -> None:
        extra = body.model_extra or {}
        for name in UNSUPPORTED:  # silently ignoring these would change what the client gets
            value = extra.get(name)
            if value not in (None, False, 0, "", [], {}) and not (name == "best_of" and value == 1):
                raise APIError(400, f"{name} is not supported by genlab serve", param=name, code="unsupported")

    def plan(m: ServedModel, body: _TextBody, prompts: list[str], extra_stop: list[str], default_max: int
             ) -> tuple[list[list[int]], list[list[int]], int, list[str]]:
        """Token ids per prompt, what the model starts from per prompt (an empty prompt: the
        model's start tokens, as `genlab sample`), max_tokens and stop strings, after every limit check."""
        if body.n > limits.max_n:
            raise APIError(400, f"n must be <= {limits.max_n}, got {body.n}", param="n")
        refuse_unsupported(body)
        stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        if len(stop) > 4 or any(not s for s in stop):
            raise APIError(400, "stop must be up to 4 non-empty strings", param="stop")
        ids, starts = [], []
        for p in prompts:
            p_ids = m.encode(p) if p else []
            start = p_ids or list(m.parts.start_ids)
            if not start:
                raise APIError(400, f"model {m.name!r} needs a non-empty prompt (it has no start token)",
                               param="prompt")
            if len(start) > limits.max_prompt_tokens:
                raise APIError(400, f"prompt of {len(start)} tokens exceeds the server's limit of "
                               f"{limits.max_prompt_tokens}", param="prompt", code="context_length_exceeded")
            ids.append(p_ids)
            starts.append(start)
        context = m.context or 10**9
        requested = body.max_tokens or body.max_completion_tokens
        if requested is not None and requested > limits.max_tokens:
            raise APIError(400, f"max_tokens must be <= {limits.max_tokens}, got {requested}", param="max_tokens")
        longest = max(len(p) for p in starts)
        if requested is None:
            requested = min(default_max, limits.max_tokens, context - longest)
        if requested < 1 or longest + requested > context:
            raise APIError(400, f"this model's context is {context} tokens; the prompt has {longest} and "
                           f"max_tokens is {requested}: shorten the prompt or lower max_tokens",
                           param="max_tokens" if longest < context else "prompt", code="context_length_exceeded")
        return ids, starts, requested, stop + extra_stop

    def submit(m: ServedModel, body: _TextBody, ids: list[list[int]], starts: list[list[int]], max_tokens: int,
               stop: list[str]) -> tuple[list[Job], asyncio.Queue]:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        base = body.seed if body.seed is not None else int.from_bytes(os.urandom(6), "little")
        jobs = []
        for pi, (p_ids, start) in enumerate(zip(ids, starts)):
            for j in range(body.n):
                index = pi * body.n + j

                def emit(kind: str, payload: Any, index: int = index) -> None:
                    loop.call_soon_threadsafe(events.put_nowait, (index, kind, payload))

                # choice j of a request with seed s is seeded s + j, as row j of sampling.generate
                jobs.append(Job(start, max_tokens, emit, m.decoder(p_ids), temperature=body.temperature,
                                top_p=body.top_p, repetition_penalty=body.repetition_penalty, stop=tuple(stop), eos_id=m.parts.eos_id, seed=base + j))
        try:
            m.batcher.submit(jobs)
        except QueueFull as e:
            raise APIError(429, f"{e}: retry shortly", "rate_limit_error", code="queue_full",
                           headers={"Retry-After": "1"}) from None
        except ShuttingDown as e:
            raise APIError(503, str(e), "server_error", code="shutting_down") from None
        metrics.queue_event(m.name)
        return jobs, events

    async def collect(request: Request, jobs: list[Job], events: asyncio.Queue) -> list[Finished]:
        results: dict[int, Finished] = {}

        async def gather() -> None:
            while len(results) < len(jobs):
                index, kind, payload = await events.get()
                if kind == "error":
                    raise APIError(500, payload, "server_error")
                if kind == "done":
                    results[index] = payload

        async def disconnected() -> None:
            while not await request.is_disconnected():
                await asyncio.sleep(0.25)

        task, watch = asyncio.ensure_future(gather()), asyncio.ensure_future(disconnected())
        try:
            done, _ = await asyncio.wait([task, watch], timeout=limits.request_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if task not in done:
                if watch in done:  # nobody is listening; the jobs are cancelled below
                    raise APIError(499, "client closed the request", code="client_closed")
                raise _timeout(limits.request_timeout)
            task.result()  # a failed generation raises its APIError here
            return [results[i] for i in range(len(jobs))]
        finally:
            task.cancel()
            watch.cancel()
            for job in jobs:
                job.cancel()

    def usage(ids: list[list[int]], results: list[Finished]) -> dict[str, int]:
        prompt = sum(len(p) for p in ids)
        completion = sum(len(r.tokens) for r in results)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def stream(request: Request, m: ServedModel, jobs: list[Job], events: asyncio.Queue, ids: list[list[int]],
               body: _TextBody, chunk: Any) -> StreamingResponse:
        """Server-sent events: one chunk per text piece, a last chunk per choice with its finish reason,
        usage if asked, then [DONE]."""
        async def events_out() -> AsyncIterator[str]:
            finished: dict[int, Finished] = {}
            deadline = time.monotonic() + limits.request_timeout
            first = True
            try:
                for i in range(len(jobs)):
                    opening = chunk(i, None, None, opening=True)
                    if opening is not None:
                        yield _sse(opening)
                while len(finished) < len(jobs):
                    event = await _next_event(events, deadline, limits.request_timeout)
                    if isinstance(event, str):  # the error that ends the stream
                        yield event
                        return
                    index, kind, payload = event
                    if kind == "text":
                        if first:
                            metrics.first_token(m.name, time.monotonic() - jobs[0].submitted)
                            first = False
                        yield _sse(chunk(index, payload, None))
                    else:
                        finished[index] = payload
                        yield _sse(chunk(index, None, _finish_reason(payload.finish_reason)))
                results = [finished[i] for i in range(len(jobs))]
                metrics.tokens(m.name, sum(len(p) for p in ids), sum(len(r.tokens) for r in results))
                if body.stream_options is not None and body.stream_options.include_usage:
                    yield _sse(chunk(None, None, None, usage=usage(ids, results)))
                yield "data: [DONE]\n\n"
            finally:  # also when the client went away: its rows leave the batch at the next step
                for job in jobs:
                    job.cancel()

        return _event_stream(events_out())

    # -- text to text (translation): one output text per prompt, decoded deterministically ------------
    def convert_options(m: ServedModel, body: _TextBody) -> dict[str, Any]:
        """The Sample options of a text-to-text request (genlab's extension `beam`; the model's
        default otherwise), after refusing what does not apply to deterministic decoding."""
        refuse_unsupported(body)
        extra = body.model_extra or {}
        if body.n != 1:
            raise APIError(400, f"model {m.name!r} gives one output per prompt: n must be 1", param="n")
        changed = [name for name, value in (("temperature", body.temperature), ("top_p", body.top_p),
                                            ("repetition_penalty", body.repetition_penalty)) if value != 1.0]
        changed += ["stop"] if body.stop else []
        if changed:
            raise APIError(400, f"{', '.join(changed)} does not apply to model {m.name!r}: it decodes "
                           "deterministically (beam search; send beam=1 for greedy)", param=changed[0],
                           code="unsupported")
        beam = extra.get("beam")
        if beam is None:
            return {}
        if not isinstance(beam, int) or isinstance(beam, bool) or not 1 <= beam <= 64:
            raise APIError(400, f"beam must be a whole number from 1 to 64, got {beam!r}", param="beam")
        return {"beam": beam}

    async def convert(m: ServedModel, body: _TextBody, prompts: list[str]) -> list[str]:
        options = convert_options(m, body)
        try:
            return await asyncio.wait_for(asyncio.to_thread(m.convert, prompts, **options), limits.request_timeout)
        except GenlabError as e:
            raise APIError(400, str(e), param="prompt") from None
        except asyncio.TimeoutError:
            raise _timeout(limits.request_timeout) from None

    def convert_stream(m: ServedModel, body: _TextBody, prompts: list[str], chunk: Any) -> StreamingResponse:
        """Server-sent events of one greedy output as it is decoded (beam search knows its words
        only at the end, so a stream is greedy), then a last chunk with finish_reason stop."""
        options = convert_options(m, body)
        if options.get("beam", 1) != 1:
            raise APIError(400, "stream: true decodes greedily (beam search knows its words only at the end): "
                           "send beam=1 or no beam", param="beam")
        if len(prompts) != 1:
            raise APIError(400, f"stream: true takes one prompt, got {len(prompts)}", param="prompt")
        try:
            pieces = m.start_stream(prompts[0])
        except GenlabError as e:
            raise APIError(400, str(e), param="prompt") from None
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        cancelled = threading.Event()

        def work() -> None:
            put = lambda kind, payload: loop.call_soon_threadsafe(events.put_nowait, (kind, payload))  # noqa: E731
            try:
                m.drain(pieces, cancelled, lambda piece: put("text", piece))
                put("done", None)
            except Exception as e:  # a crash of the model: the client gets it as the stream's last event
                put("error", f"internal error: {type(e).__name__}: {e}")

        async def events_out() -> AsyncIterator[str]:
            deadline = time.monotonic() + limits.request_timeout
            started = time.monotonic()
            threading.Thread(target=work, daemon=True, name=f"stream-{m.name}").start()
            try:
                opening = chunk(0, None, None, opening=True)
                if opening is not None:
                    yield _sse(opening)
                first = True
                while True:
                    event = await _next_event(events, deadline, limits.request_timeout)
                    if isinstance(event, str):  # the error that ends the stream
                        yield event
                        return
                    kind, payload = event
                    if kind == "done":
                        break
                    if first:
                        metrics.first_token(m.name, time.monotonic() - started)
                        first = False
                    yield _sse(chunk(0, payload, None))
                yield _sse(chunk(0, None, 'stop'))
                yield "data: [DONE]\n\n"
            finally:  # also when the client went away: decoding stops at the next token
                cancelled.set()

        return _event_stream(events_out())

    @app.post("/v1/completions")
    async def completions(body: CompletionBody, request: Request) -> Any:
        m = get_model(body.model, "text")
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts:
            raise APIError(400, "prompt must not be an empty list", param="prompt")
        rid, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def chunk(index, text, finish, opening=False, usage=None):
            if opening:
                return None
            if usage is not None:
                return {"id": rid, "object": "text_completion", "created": created, "model": m.name,
                        "choices": [], "usage": usage}
            return {"id": rid, "object": "text_completion", "created": created, "model": m.name,
                    "choices": [{"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}]}

        if m.kind == "text-to-text":
            if body.stream:
                return convert_stream(m, body, prompts, chunk)
            texts = await convert(m, body, prompts)
            return {"id": rid, "object": "text_completion", "created": created, "model": m.name,
                    "choices": [{"index": i, "text": t, "logprobs": None, "finish_reason": "stop"}
                                for i, t in enumerate(texts)]}
        ids, starts, max_tokens, stop = plan(m, body, prompts, [], 16)
        jobs, events = submit(m, body, ids, starts, max_tokens, stop)
        if body.stream:
            return stream(request, m, jobs, events, ids, body, chunk)
        results = await collect(request, jobs, events)
        metrics.tokens(m.name, sum(len(p) for p in ids), sum(len(r.tokens) for r in results))
        return {"id": rid, "object": "text_completion", "created": created, "model": m.name,
                "choices": [{"index": i, "text": r.text, "logprobs": None,
                             "finish_reason": _finish_reason(r.finish_reason)} for i, r in enumerate(results)],
                "usage": usage(ids, results)}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatBody, request: Request) -> Any:
        m = get_model(body.model, "text")
        rid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def chunk(index, text, finish, opening=False, usage=None):
            base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": m.name}
            if usage is not None:
                return {**base, "choices": [], "usage": usage}
            delta = {"role": "assistant", "content": ""} if opening else ({"content": text} if text else {})
            return {**base, "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        if m.kind == "text-to-text":  # the text of the last user message is what is translated
            users = [msg.content for msg in body.messages if msg.role == "user"]
            if not users:
                raise APIError(400, f"model {m.name!r} turns the last user message into its output: send one",
                               param="messages")
            if body.stream:
                return convert_stream(m, body, users[-1:], chunk)
            (text,) = await convert(m, body, users[-1:])
            return {"id": rid, "object": "chat.completion", "created": created, "model": m.name,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                                 "finish_reason": "stop"}]}
        prompt = m.template.render([msg.model_dump() for msg in body.messages])
        ids, starts, max_tokens, stop = plan(m, body, [prompt], m.template.stop, limits.max_tokens)
        jobs, events = submit(m, body, ids, starts, max_tokens, stop)
        if body.stream:
            return stream(request, m, jobs, events, ids, body, chunk)
        results = await collect(request, jobs, events)
        metrics.tokens(m.name, sum(len(p) for p in ids), sum(len(r.tokens) for r in results))
        return {"id": rid, "object": "chat.completion", "created": created, "model": m.name,
                "choices": [{"index": i, "message": {"role": "assistant", "content": r.text.strip()},
                             "logprobs": None, "finish_reason": _finish_reason(r.finish_reason)}
                            for i, r in enumerate(results)],
                "usage": usage(ids, results)}

    # -- everything that is not text -------------------------------------------------------------------
    async def sample(m: ServedModel, options: dict[str, Any]) -> Output:
        try:
            out = await asyncio.wait_for(asyncio.to_thread(m.sample, **options), limits.request_timeout)
        except GenlabError as e:
            raise APIError(400, str(e), param="options") from None
        except asyncio.TimeoutError:
            raise APIError(504, f"sampling took longer than {limits.request_timeout:g} s", "timeout_error",
                           code="timeout") from None
        if not isinstance(out, Output):
            raise APIError(500, f"recipe {m.recipe_name} returned {type(out).__name__}, not a genlab output",
                           "server_error")
        return out

    @app.post("/v1/images/generations")
    async def images(body: ImageBody) -> dict[str, Any]:
        m = get_model(body.model)
        if m.kind == "text":
            raise APIError(400, f"model {m.name!r} is a text model: use /v1/completions", param="model",
                           code="wrong_model_kind")
        if body.n > limits.max_n:
            raise APIError(400, f"n must be <= {limits.max_n}, got {body.n}", param="n")
        try:
            options = m.sample_options_for_prompt(body.prompt)
        except GenlabError as e:
            raise APIError(400, str(e), param="prompt") from None
        options.update(n=body.n, seed=body.seed if body.seed is not None else int.from_bytes(os.urandom(3), "little"))
        out = await sample(m, options)
        if isinstance(out, Bundle):
            out = next((p for p in out.parts.values() if isinstance(p, Images)), out)
        if not isinstance(out, Images):
            raise APIError(400, f"model {m.name!r} does not draw images (it returns {out.kind}): "
                           "use /genlab/v1/sample", param="model", code="wrong_model_kind")
        metrics.images(m.name, len(out.images))
        b64 = out.to_json()["png_base64"]
        return {"created": int(time.time()),
                "data": [{"b64_json": b, "revised_prompt": out.labels[i] if i < len(out.labels) else None}
                         for i, b in enumerate(b64[:body.n])]}

    @app.post("/genlab/v1/sample")
    async def genlab_sample(body: SampleBody) -> dict[str, Any]:
        m = get_model(body.model)
        out = await sample(m, dict(body.options))
        return {"model": m.name, "output": out.to_json()}

    return app
