"""`minikd serve`: the teacher as a text-only HTTP API, in the shape of OpenAI's completions and chat endpoints.

Sequence-level KD needs only the teacher's answers as text (Kim & Rush 2016): whoever holds the teacher
can serve it, and whoever trains the student can label prompts through the wire (minikd.machinery.client),
with no logits and no checkpoint on the student's side: one instructor's machine can serve a whole class.
Standard library only (http.server); a learner need not read this module.

    POST /v1/completions   {"prompt": str | [str, ...], "max_tokens": 16, "temperature": 1.0, "n": 1,
                            "seed": null, "logprobs": null, "model": optional}
                           -> {"id", "object": "text_completion", "created", "model", "system_fingerprint",
                               "choices": [{"index", "text", "finish_reason", "logprobs"}], "usage"}
    POST /v1/chat/completions  {"messages": [{"role": "user", "content": str}], "max_tokens" (or
                            "max_completion_tokens"), "temperature", "n", "seed", "logprobs": bool, "model"}
                           -> {"object": "chat.completion", "choices": [{"index", "message": {"role":
                               "assistant", "content"}, "finish_reason", "logprobs": {"content": [...]}}], ...}
    GET  /v1/models        {"object": "list", "data": [{"id": <model name>, ...}]}
    GET  /health           {"status": "ok", "model", "system_fingerprint", "tokenizer", "context", "batching", ...}

Chat. The one user message is the prompt, rendered with OUR template (Tokenizer.render_prompt), so chat
and completions give the same answer to the same prompt. The teacher was trained on single prompts and
answers: a system message, an assistant turn or a second user turn is a 400 naming the message.

Decoding. temperature 0 is greedy, through the same minikd.generate.generate call as local greedy
labelling (seqkd.label_prompts); temperature > 0 samples (n answers per prompt, `seed` seeds the draw).
A request's prompts are decoded together, as one call of generate() (batch_size rows at once): a client
that sends a whole chunk of prompts in one request, alone, gets the very floats of a local run over that
chunk. finish_reason is "stop" when the end token came, "length" when max_tokens cut the answer off.
Choices are ordered prompt by prompt, n per prompt: index = i * n + j.

Dynamic batching. One thread owns the model (Batcher); handler threads queue their requests. It takes the
first, waits up to the window (--batch-window-ms, default BATCH_WINDOW_MS = 15; 0 = off: one request at a
time) for more, and decodes the greedy requests with the same max_tokens as ONE generate() call. generate()
decodes prompts of equal length together and never pads, so each row is the sequence it would be alone: the greedy text is
the text of the request decoded alone (a test checks it); the log-probs may differ in the last bits, since
a matmul's rounding depends on the batch. A sampled request is always decoded alone: its seed fixes its
draws, which must not depend on who else asked at the same moment.

Log-probs. With "logprobs": 0 (completions) or true (chat) each choice carries the log-prob under the
teacher (temperature 1) of every token written; when the answer stopped, the end token "<|end|>" is the
last entry, so their sum is the record's teacher_logprob, log p(u + <|end|> | s). Top alternatives are not
computed (logprobs > 0, top_logprobs > 0: a 400).

Keys. With --api-key-env VAR every request needs "Authorization: Bearer <key>", else a 401 JSON error.
The server keeps only the SHA-256 digest of the expected header and compares digests with
hmac.compare_digest (constant time); the key is never printed or logged.

Errors. Every bad request gets a 4xx JSON body {"error": {"message", "type", "param"}} naming the field;
the server never stops on one: 400 bad field / not JSON / max_tokens beyond the context, 401 no or wrong
key, 404 unknown path or model, 405 wrong method, 411 no Content-Length, 413 a body over MAX_BODY. An
error while decoding is a 500. Fields that would change the response's shape or meaning (stream, echo,
stop, best_of, suffix, logprobs > 0; on chat also tools, functions, response_format, logit_bias) are a
400 that says so; other fields are ignored.

Concurrency. ThreadingHTTPServer answers each connection in a thread, with a listen backlog of 128
(--backlog; the standard library's 5 resets a class that connects at once). The server binds to 127.0.0.1
unless told otherwise. One line per request goes to stderr (method, path, status, prompts, seconds),
never a prompt or a header.
"""

from __future__ import annotations

import argparse
import json
import hashlib
import hmac
import math
import os
import queue
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from minikd.generate import generate
from minikd.machinery.labelling import teacher_fingerprint

# How long the model thread waits for more greedy requests before it decodes what came as one batch. 15 ms: at
# 16 clients on a 2-core CPU, 3.8x the requests/s of one request at a time (`minikd bench --serve`, README);
# one client alone waits those 15 ms more per request.
BATCH_WINDOW_MS = 15.0

MAX_BODY = 1 << 20  # bytes of a request body (1 MiB)
MAX_DRAIN = 64 << 20  # a larger body is read and thrown away (so the client sees the 413); beyond this, cut
MAX_PROMPTS = 1024  # prompts in one request
MAX_N = 16  # answers per prompt
# Fields that would change the answer's shape or meaning, and the values that leave it as it is.
UNSUPPORTED = {"stream": (None, False), "echo": (None, False), "best_of": (None, 1), "suffix": (None, ""),
               "stop": (None, "", [])}
# Chat fields that ask for more than text (tools, JSON mode, streaming) or bend the distribution.
CHAT_UNSUPPORTED = {"stream": (None, False), "stop": (None, "", []), "tools": (None, []),
                    "tool_choice": (None, "none"), "functions": (None, []), "function_call": (None, "none"),
                    "response_format": (None, {"type": "text"}), "logit_bias": (None, {})}
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class RequestError(Exception):
    """A bad request: the HTTP status and the JSON error body's message, type and param."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind


def error_body(status: int, message: str, param: str | None, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


# ---------------------------------------------------------------------------------------------------
# Reading and checking a completion request
# ---------------------------------------------------------------------------------------------------


def _int_field(body: dict, name: str, default, low: int, high: int | None = None):
    """body[name] as an int in [low, high] (None allowed when default is None)."""
    value = body.get(name, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(400, f"'{name}' must be an integer, got {json.dumps(value)}", name)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise RequestError(400, f"'{name}' must be {bound}, got {value}", name)
    return value


def _prompts(body: dict) -> list[str]:
    """The prompt field: one string or a list of strings (OpenAI accepts both)."""
    if "prompt" not in body:
        raise RequestError(400, "missing required field 'prompt' (a string or a list of strings)", "prompt")
    prompt = body["prompt"]
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise RequestError(400, "'prompt' must be a string or a non-empty list of strings "
                           "(token-id prompts are not supported)", "prompt")
    if len(prompts) > MAX_PROMPTS:
        raise RequestError(400, f"'prompt' holds {len(prompts)} prompts; at most {MAX_PROMPTS} per request", "prompt")
    return prompts


def _check_fields(body, model_name: str, unsupported: dict) -> None:
    """The checks both endpoints share: a JSON object, no field that would change the answer's shape, our model."""
    if not isinstance(body, dict):
        raise RequestError(400, f"the body must be a JSON object, got {type(body).__name__}")
    for name, neutral in unsupported.items():
        if body.get(name) not in neutral:
            raise RequestError(400, f"'{name}' is not supported by this server", name)
    if body.get("model") not in (None, model_name):
        raise RequestError(404, f"model {body['model']!r} does not exist here; this server has {model_name!r}",
                           "model", "model_not_found")


def _sampling_fields(body: dict, max_tokens_field: str = "max_tokens") -> dict:
    """max_tokens, temperature, n and seed, checked (the same for completions and chat)."""
    temperature = body.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature < math.inf:
        raise RequestError(400, f"'temperature' must be a number >= 0 (0 = greedy), got {json.dumps(temperature)}",
                           "temperature")
    return {"max_tokens": _int_field(body, max_tokens_field, 16, 1), "temperature": float(temperature),
            "n": _int_field(body, "n", 1, 1, MAX_N), "seed": _int_field(body, "seed", None, 0, 2**63 - 1)}


def parse_request(body, model_name: str) -> dict:
    """A completion request's fields, checked: {prompts, max_tokens, temperature, n, seed, logprobs}."""
    _check_fields(body, model_name, UNSUPPORTED)
    logprobs = _int_field(body, "logprobs", None, 0)
    if logprobs:
        raise RequestError(400, "'logprobs' must be 0 or null: this server returns the log-probs of the tokens "
                           "it wrote, not the top alternatives", "logprobs")
    return {"prompts": _prompts(body), **_sampling_fields(body), "logprobs": logprobs is not None}


def _user_message(body: dict) -> str:
    """The one user message of a chat request: the prompt. The teacher was trained on one prompt and one
    answer under our template, so a system message, an earlier turn or a foreign role is a 400 naming it."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list of {\"role\", \"content\"} objects", "messages")
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise RequestError(400, f"'{where}' must be an object with 'role' and 'content'", where)
        if m.get("role") not in CHAT_ROLES:
            raise RequestError(400, f"'{where}.role' is {json.dumps(m.get('role'))}; expected one of "
                               f"{', '.join(CHAT_ROLES)}", f"{where}.role")
        if not isinstance(m.get("content"), str):
            raise RequestError(400, f"'{where}.content' must be a string (content parts, images and tool "
                               "results are not supported)", f"{where}.content")
        if m["role"] != "user":
            raise RequestError(400, f"'{where}.role' is {m['role']!r}: this teacher answers one user message "
                               "and was trained without system prompts or earlier turns", f"{where}.role")
    if len(messages) > 1:
        raise RequestError(400, f"'messages' holds {len(messages)} user turns: this teacher answers exactly one "
                           "(it was trained on single prompts)", "messages")
    return messages[0]["content"]


def parse_chat(body, model_name: str) -> dict:
    """A chat request's fields, checked: the user message as the one prompt, the rest as for completions."""
    _check_fields(body, model_name, CHAT_UNSUPPORTED)
    if body.get("top_logprobs") not in (None, 0):
        raise RequestError(400, "'top_logprobs' must be 0 or null: this server returns the log-probs of the "
                           "tokens it wrote, not the top alternatives", "top_logprobs")
    logprobs = body.get("logprobs")
    if logprobs not in (None, True, False):
        raise RequestError(400, f"'logprobs' must be true or false, got {json.dumps(logprobs)}", "logprobs")
    limit = "max_tokens"
    if body.get("max_completion_tokens") is not None:
        if body.get("max_tokens") not in (None, body["max_completion_tokens"]):
            raise RequestError(400, "'max_tokens' and 'max_completion_tokens' disagree; send one",
                               "max_completion_tokens")
        limit = "max_completion_tokens"
    return {"prompts": [_user_message(body)], **_sampling_fields(body, limit), "logprobs": bool(logprobs)}


def check_context(ids: list[list[int]], max_tokens: int, context: int) -> None:
    """Every prompt leaves room for max_tokens in the teacher's context (else a 400 naming the prompt)."""
    for i, p in enumerate(ids):
        if len(p) + max_tokens > context:
            raise RequestError(400, f"prompt {i} has {len(p)} tokens; with max_tokens={max_tokens} that is "
                               f"{len(p) + max_tokens} > the model's context of {context} tokens", "max_tokens")


# ---------------------------------------------------------------------------------------------------
# Answering it: one thread runs the model and merges requests that arrive together
# ---------------------------------------------------------------------------------------------------


def _decode(teacher, ids: list[list[int]], req: dict, end_id: int, batch_size: int) -> list[list]:
    """n Generations per prompt: greedy once (its n copies are equal), or n draws per prompt."""
    kw = dict(max_new_tokens=req["max_tokens"], end_id=end_id, batch_size=batch_size)
    if req["temperature"] == 0:
        return [[g] * req["n"] for g in generate(teacher, ids, method="greedy", **kw)]
    gens = generate(teacher, ids, method="sample", temperature=req["temperature"], num_return=req["n"],
                    seed=req["seed"], **kw)
    return [g if isinstance(g, list) else [g] for g in gens]


class Job:
    """One request waiting for the model: its prompts' token ids, its fields, and (when done) its answers."""

    def __init__(self, ids: list[list[int]], req: dict):
        self.ids, self.req, self.done = ids, req, threading.Event()
        self.answers, self.error = None, None


def merge_key(req: dict):
    """Requests with the same key may share a batch: greedy ones with the same max_tokens (greedy text does
    not depend on the other rows of its batch). A sampled request is decoded alone: its seed fixes its draws,
    which must not depend on who else asked at the same moment."""
    return ("greedy", req["max_tokens"]) if req["temperature"] == 0 else None


class Batcher:
    """Dynamic batching. Handler threads queue their requests and wait; this one thread owns the model. It
    takes the first request, waits up to `window` seconds for more (window 0: batching off, one request at a
    time), and decodes the greedy requests that came as ONE generate() call (prompts of equal length share
    rows, as in minikd.generate), then answers each request with its own rows."""

    def __init__(self, teacher, end_id: int, batch_size: int, window: float):
        self.teacher, self.end_id, self.batch_size, self.window = teacher, end_id, batch_size, window
        self.queue: queue.Queue = queue.Queue()
        self.batches = self.requests = 0  # decode calls made, requests answered (GET /health shows them)
        self.thread = threading.Thread(target=self._loop, name="minikd-batcher", daemon=True)
        self.thread.start()

    def submit(self, ids: list[list[int]], req: dict) -> list[list]:
        """Decode one request (blocks until its batch is done): n Generations per prompt, as _decode."""
        job = Job(ids, req)
        self.queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.answers

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()

    def _gather(self, first: Job) -> list[Job]:
        """The first request and those arriving within the window (at most MAX_PROMPTS prompts in all)."""
        jobs, deadline = [first], time.monotonic() + self.window
        while self.window > 0 and sum(len(j.ids) for j in jobs) < MAX_PROMPTS:
            try:
                job = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:  # closing: let the loop see it
                self.queue.put(None)
                break
            jobs.append(job)
        return jobs

    def _loop(self) -> None:
        while (first := self.queue.get()) is not None:
            groups: dict = {}
            for job in self._gather(first):
                key = merge_key(job.req)
                groups.setdefault(id(job) if key is None else key, []).append(job)
            for group in groups.values():
                self._run(group)

    def _run(self, group: list[Job]) -> None:
        """Decode a group as one call; a failure fails every request of the group (each gets a 500)."""
        try:
            if len(group) == 1:
                group[0].answers = _decode(self.teacher, group[0].ids, group[0].req, self.end_id, self.batch_size)
            else:  # greedy requests with one max_tokens: all their prompts in one call, then split back
                ids = [p for job in group for p in job.ids]
                gens = _decode(self.teacher, ids, {**group[0].req, "n": 1}, self.end_id, self.batch_size)
                at = 0
                for job in group:
                    job.answers = [[g] * job.req["n"] for (g,) in gens[at:at + len(job.ids)]]
                    at += len(job.ids)
        except Exception as e:  # noqa: BLE001 (handed to every waiting handler, which answers 500)
            for job in group:
                job.error = e
        self.batches += 1
        self.requests += len(group)
        for job in group:
            job.done.set()


def _answers(state: dict, req: dict) -> tuple[list[list[int]], list, int]:
    """(the prompts' ids, every choice's Generation in order: prompt by prompt, n per prompt, the answer number)."""
    tok = state["tok"]
    ids = [tok.render_prompt(p) for p in req["prompts"]]
    check_context(ids, req["max_tokens"], state["teacher"].config.block_size)
    answers = state["batcher"].submit(ids, req)
    with state["lock"]:
        state["served"] += 1
        number = state["served"]
    return ids, [g for per_prompt in answers for g in per_prompt], number


def _usage(ids: list[list[int]], gens: list) -> dict:
    prompt_tokens, written = sum(len(p) for p in ids), sum(len(g.token_logprobs) for g in gens)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": written, "total_tokens": prompt_tokens + written}


def _written(tok, g) -> tuple[list[str], list[float]]:
    """The tokens an answer wrote and their log-probs; the end token is the last entry when it stopped."""
    ids = g.tokens + ([tok.end_id] if g.ended else [])
    return [tok.decode([i]) for i in ids], list(g.token_logprobs)


def _logprobs(tok, g) -> dict:
    """The completions endpoint's logprobs object for one answer."""
    tokens, lps = _written(tok, g)
    offsets = [sum(len(t) for t in tokens[:k]) for k in range(len(tokens))]
    return {"tokens": tokens, "token_logprobs": lps, "top_logprobs": None, "text_offset": offsets}


def _chat_logprobs(tok, g) -> dict:
    """The chat endpoint's logprobs object: one {token, logprob, bytes, top_logprobs} per token written."""
    tokens, lps = _written(tok, g)
    return {"content": [{"token": t, "logprob": lp, "bytes": list(t.encode("utf-8")), "top_logprobs": []}
                        for t, lp in zip(tokens, lps)], "refusal": None}


def _envelope(state: dict, kind: str, number: int, choices: list, usage: dict) -> dict:
    prefix = "chatcmpl" if kind == "chat.completion" else "cmpl"
    return {"id": f"{prefix}-{number}", "object": kind, "created": int(time.time()), "model": state["model"],
            "system_fingerprint": state["fingerprint"], "choices": choices, "usage": usage}


def complete(state: dict, body) -> dict:
    """The JSON answer to one completion request (RequestError for a bad one)."""
    req = parse_request(body, state["model"])
    tok = state["tok"]
    ids, gens, number = _answers(state, req)
    choices = [{"index": i, "text": tok.decode(g.tokens), "finish_reason": "stop" if g.ended else "length",
                "logprobs": _logprobs(tok, g) if req["logprobs"] else None} for i, g in enumerate(gens)]
    return _envelope(state, "text_completion", number, choices, _usage(ids, gens))


def chat(state: dict, body) -> dict:
    """The JSON answer to one chat request: the user message is the prompt, under our own template."""
    req = parse_chat(body, state["model"])
    tok = state["tok"]
    ids, gens, number = _answers(state, req)
    choices = [{"index": i, "message": {"role": "assistant", "content": tok.decode(g.tokens), "refusal": None},
                "finish_reason": "stop" if g.ended else "length",
                "logprobs": _chat_logprobs(tok, g) if req["logprobs"] else None} for i, g in enumerate(gens)]
    return _envelope(state, "chat.completion", number, choices, _usage(ids, gens))


def health(state: dict) -> dict:
    """What a client records about the teacher (minikd.machinery.client writes it into its sidecar)."""
    teacher, batcher = state["teacher"], state["batcher"]
    return {"status": "ok", "model": state["model"], "system_fingerprint": state["fingerprint"],
            "tokenizer": state["tok"].fingerprint, "context": teacher.config.block_size,
            "batch_size": state["batch_size"], "teacher_checkpoint": state["checkpoint"],
            "teacher_config": teacher.config_dict() if hasattr(teacher, "config_dict") else None,
            "batching": {"window_ms": batcher.window * 1000, "decode_calls": batcher.batches,
                         "requests": batcher.requests}}


# ---------------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    """Routes four paths; checks the key; turns every failure into a JSON error; logs one line per request."""

    server_version = "minikd-serve"
    timeout = 60  # seconds a connection may stay silent (a stalled client cannot hold a thread for ever)
    routes = {"/v1/completions": "POST", "/v1/chat/completions": "POST", "/v1/models": "GET", "/health": "GET"}

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        t0, self.n_prompts = time.perf_counter(), 0
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            self._check_key()
            status, payload = 200, self._route(method, path)
        except RequestError as e:
            status, payload = e.status, error_body(e.status, e.message, e.param, e.kind)
        except Exception as e:  # a bug or a failure while decoding: this request fails, the server goes on
            status, payload = 500, error_body(500, f"{type(e).__name__}: {e}", None, "server_error")
        self._send(status, payload, [("WWW-Authenticate", "Bearer")] if status == 401 else [])
        if self.server.state["log"]:
            print(f"minikd serve: {method} {path} {status} prompts={self.n_prompts} "
                  f"{time.perf_counter() - t0:.3f}s", file=sys.stderr, flush=True)

    def _check_key(self) -> None:
        """With a key set, every request must carry `Authorization: Bearer <key>` (else 401). Compared in
        constant time (hmac.compare_digest of SHA-256 digests: the server does not even hold the key)."""
        want = self.server.state["key_sha256"]
        if want is None:
            return
        sent = self.headers.get("Authorization", "")
        if hmac.compare_digest(hashlib.sha256(sent.encode("utf-8", "replace")).digest(), want):
            return
        length = self.headers.get("Content-Length", "")
        if length.isdigit():
            self._drain(int(length))  # read the body we will not use, so the client gets the 401, not a reset
        else:
            self.close_connection = True
        raise RequestError(401, "missing or wrong API key: send the header 'Authorization: Bearer <key>' with the "
                           "key the server was started with", None, "authentication_error")

    def _route(self, method: str, path: str) -> dict:
        if path not in self.routes:
            raise RequestError(404, f"no such path {path!r}; try POST /v1/completions, POST /v1/chat/completions, "
                               "GET /v1/models, GET /health", None, "not_found")
        if method != self.routes[path]:
            raise RequestError(405, f"{path} takes {self.routes[path]}, not {method}", None, "method_not_allowed")
        state = self.server.state
        if path == "/health":
            return health(state)
        if path == "/v1/models":
            return {"object": "list", "data": [{"id": state["model"], "object": "model", "owned_by": "minikd"}]}
        body = self._body()
        if path == "/v1/chat/completions":
            self.n_prompts = 1
            return chat(state, body)
        self.n_prompts = len(body["prompt"]) if isinstance(body, dict) and isinstance(body.get("prompt"), list) else 1
        return complete(state, body)

    def _body(self):
        """The request body as JSON; too large, missing or malformed -> a RequestError."""
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(411, "a Content-Length header is required (chunked bodies are not supported)")
        if not length.isdigit():
            raise RequestError(400, f"bad Content-Length {length!r}")
        if int(length) > MAX_BODY:
            self._drain(int(length))
            raise RequestError(413, f"the body has {int(length)} bytes; at most {MAX_BODY} are accepted")
        try:
            return json.loads(self.rfile.read(int(length)).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RequestError(400, f"the body is not valid JSON ({e})") from None

    def _drain(self, length: int) -> None:
        """Read a too-large body and throw it away, so the client is done sending when the 413 comes."""
        if length > MAX_DRAIN:
            self.close_connection = True
            return
        while length > 0:
            got = self.rfile.read(min(length, 1 << 16))
            if not got:
                break
            length -= len(got)

    def _send(self, status: int, payload: dict, headers=()) -> None:
        data = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client went away: nothing to tell it

    def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's name)
        """http.server's own log lines are replaced by _handle's single line."""


class TeacherServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a listen backlog for a class (the standard library's 5 resets the 6th client
    that connects at once) and the batcher stopped on close."""

    daemon_threads = True
    request_queue_size = 128

    def server_close(self) -> None:
        super().server_close()
        self.state["batcher"].close()


def make_server(teacher, tok, host: str = "127.0.0.1", port: int = 0, model_name: str = "minikd-teacher", *,
                batch_size: int = 256, checkpoint: dict | None = None, log: bool = True,
                batch_window: float = BATCH_WINDOW_MS / 1000, api_key: str | None = None,
                backlog: int = 128) -> TeacherServer:
    """A server bound to (host, port) that serves `teacher` (port 0: any free port).

    batch_window: seconds the batcher waits for more requests to decode with the first (0: batching off);
    api_key: when set, every request needs `Authorization: Bearer <api_key>` (only its digest is kept).
    """
    from minikd.model import check_vocab
    check_vocab(tok, teacher)
    if batch_size < 1 or backlog < 1 or not 0 <= batch_window <= 10:
        raise ValueError(f"need batch_size >= 1, backlog >= 1 and 0 <= batch_window <= 10 s; got {batch_size}, "
                         f"{backlog}, {batch_window}")
    if api_key is not None and not api_key:
        raise ValueError("api_key is empty: pass None for no key")
    server = TeacherServer((host, port), Handler, bind_and_activate=False)
    server.request_queue_size = backlog  # listen()'s backlog, read by server_activate
    try:
        server.server_bind()
        server.server_activate()
    except OSError:
        server.socket.close()
        raise
    teacher.eval()
    server.state = {"teacher": teacher, "tok": tok, "model": model_name, "fingerprint": teacher_fingerprint(teacher),
                    "batch_size": batch_size, "checkpoint": checkpoint, "log": log, "lock": threading.Lock(),
                    "served": 0, "batcher": Batcher(teacher, tok.end_id, batch_size, batch_window),
                    "key_sha256": None if api_key is None else hashlib.sha256(f"Bearer {api_key}".encode()).digest()}
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


class Background:
    """A server answering in a background thread: .url, .close() (also a context manager)."""

    def __init__(self, server: ThreadingHTTPServer):
        self.server = server
        self.url = server_url(server)
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving, release the port, wait for the thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def serve_in_background(teacher, tok, host: str = "127.0.0.1", port: int = 0, model_name: str = "minikd-teacher",
                        **kw) -> Background:
    """Serve `teacher` from this process (a lesson, a test): returns an object with .url and .close().

    kw: make_server's batch_size, checkpoint, log (default False here: a lesson's output stays readable).
    """
    kw.setdefault("log", False)
    return Background(make_server(teacher, tok, host, port, model_name, **kw))


# ---------------------------------------------------------------------------------------------------
# minikd serve
# ---------------------------------------------------------------------------------------------------


def parse_args(argv):
    from minikd.runtime import runs_dir
    p = argparse.ArgumentParser(prog="minikd serve", description="Serve a teacher checkpoint over HTTP in the "
                                "shape of OpenAI's API (POST /v1/completions, POST /v1/chat/completions, "
                                "GET /v1/models, GET /health). Label prompts through it with "
                                "`minikd generate --api URL`.")
    p.add_argument("--teacher", default=str(runs_dir() / "default" / "teacher.pt"),
                   help="teacher checkpoint (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only; "
                   "0.0.0.0 serves the network: set a key with --api-key-env)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s; 0 = any free port)")
    p.add_argument("--model-name", default="minikd-teacher", help="the model name /v1/models lists")
    p.add_argument("--api-key-env", default=None, metavar="VAR", help="require 'Authorization: Bearer <key>' on "
                   "every request, the key read from this environment variable (never printed or logged)")
    p.add_argument("--batch-size", type=int, default=256, help="rows decoded at once (as minikd generate)")
    p.add_argument("--batch-window-ms", type=float, default=BATCH_WINDOW_MS,
                   help="dynamic batching: greedy requests arriving within this many ms of the first are decoded "
                   "as one batch (default %(default)s; 0 = off, one request at a time)")
    p.add_argument("--backlog", type=int, default=128, help="connections the OS queues before accept (default "
                   "%(default)s: a class connecting at once)")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    """`minikd serve`: load the teacher, print the URL, serve until Ctrl-C."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from minikd.machinery.client import read_key
    from minikd.tokenizer import Tokenizer
    from minikd.train import load_model
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        import torch
        torch.set_num_threads(args.threads)
    key = read_key(args.api_key_env)
    if not Path(args.teacher).exists():
        raise ValueError(f"teacher checkpoint {args.teacher}: no such file (train one with "
                         "`python -m lessons.l05_train_teacher` or `minikd run`, or pass --teacher)")
    tok = Tokenizer.default()
    teacher, ckpt = load_model(args.teacher, tok, device=args.device)
    server = make_server(teacher, tok, args.host, args.port, args.model_name, batch_size=args.batch_size,
                         checkpoint={"path": str(args.teacher), "step": ckpt["step"]}, api_key=key,
                         batch_window=args.batch_window_ms / 1000, backlog=args.backlog)
    url = server_url(server)
    guard = f"key from ${args.api_key_env} required" if key else "no key"
    print(f"minikd serve: {args.teacher} ({teacher.num_params():,} parameters) as model {args.model_name!r} "
          f"at {url}  (POST {url}/v1/chat/completions or /v1/completions, GET {url}/health; {guard}; batching "
          f"{f'{args.batch_window_ms:g} ms' if args.batch_window_ms else 'off'}; Ctrl-C stops)", flush=True)
    if key is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"minikd serve: warning: {args.host} without --api-key-env: anyone who can reach this port can use "
              "the teacher", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("minikd serve: stopped", flush=True)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
