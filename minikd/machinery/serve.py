"""`minikd serve`: the teacher as a text-only HTTP API, in the shape of OpenAI's completions endpoint.

Sequence-level KD needs only the teacher's answers as text (Kim & Rush 2016): whoever holds the teacher
can serve it, and whoever trains the student can label prompts through the wire (minikd.machinery.client), with no
logits and no checkpoint on the student's side. Standard library only (http.server); a learner need not
read this module.

    POST /v1/completions   {"prompt": str | [str, ...], "max_tokens": 16, "temperature": 1.0, "n": 1,
                            "seed": null, "logprobs": null, "model": optional}
                           -> {"id", "object": "text_completion", "created", "model", "system_fingerprint",
                               "choices": [{"index", "text", "finish_reason", "logprobs"}], "usage"}
    GET  /v1/models        {"object": "list", "data": [{"id": <model name>, ...}]}
    GET  /health           {"status": "ok", "model", "system_fingerprint", "tokenizer", "context", ...}

Decoding. temperature 0 is greedy, through the same minikd.generate.generate call as local greedy
labelling (seqkd.label_prompts), so the text is byte for byte the local one; temperature > 0 samples
(n answers per prompt, `seed` seeds the draw). A request's prompts are decoded together, as one call of
generate() (batch_size rows at once): a client that sends a whole chunk of prompts in one request gets the
very floats of a local run over that chunk. finish_reason is "stop" when the end token came, "length" when
max_tokens cut the answer off. Choices are ordered prompt by prompt, n per prompt: index = i * n + j.

Log-probs. With "logprobs": 0 each choice carries logprobs.tokens / token_logprobs: the log-prob under
the teacher (temperature 1) of every token written; when the answer stopped, the end token "<|end|>" is
the last entry, so sum(token_logprobs) is the record's teacher_logprob, log p(u + <|end|> | s), and the
answer has len(token_logprobs) - 1 tokens. Top alternatives are not computed (logprobs > 0 is a 400).

Errors. Every bad request gets a 4xx JSON body {"error": {"message", "type", "param"}} naming the field;
the server never stops on one: 400 bad field / not JSON / max_tokens beyond the context, 404 unknown path
or model, 405 wrong method, 411 no Content-Length, 413 a body over MAX_BODY. An error while decoding is
a 500. Fields this server does not implement are ignored, except those that would change the response's
shape or meaning (stream, echo, stop, best_of, suffix, logprobs > 0): a 400 says so.

Concurrency. ThreadingHTTPServer answers each connection in a thread; one lock around the model decodes
one request at a time (requests are not merged into batches). No keys are checked; the server binds to
127.0.0.1 unless told otherwise. One line per request goes to stderr (method, path, status, prompts,
seconds), never a prompt or a header.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from minikd.generate import generate
from minikd.machinery.labelling import teacher_fingerprint

MAX_BODY = 1 << 20  # bytes of a request body (1 MiB)
MAX_DRAIN = 64 << 20  # a larger body is read and thrown away (so the client sees the 413); beyond this, cut
MAX_PROMPTS = 1024  # prompts in one request
MAX_N = 16  # answers per prompt
# Fields that would change the answer's shape or meaning, and the values that leave it as it is.
UNSUPPORTED = {"stream": (None, False), "echo": (None, False), "best_of": (None, 1), "suffix": (None, ""),
               "stop": (None, "", [])}


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


def parse_request(body, model_name: str) -> dict:
    """A completion request's fields, checked: {prompts, max_tokens, temperature, n, seed, logprobs}."""
    if not isinstance(body, dict):
        raise RequestError(400, f"the body must be a JSON object, got {type(body).__name__}")
    for name, neutral in UNSUPPORTED.items():
        if body.get(name) not in neutral:
            raise RequestError(400, f"'{name}' is not supported by this server", name)
    if body.get("model") not in (None, model_name):
        raise RequestError(404, f"model {body['model']!r} does not exist here; this server has {model_name!r}",
                           "model", "model_not_found")
    temperature = body.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature < math.inf:
        raise RequestError(400, f"'temperature' must be a number >= 0 (0 = greedy), got {json.dumps(temperature)}",
                           "temperature")
    logprobs = _int_field(body, "logprobs", None, 0)
    if logprobs:
        raise RequestError(400, "'logprobs' must be 0 or null: this server returns the log-probs of the tokens "
                           "it wrote, not the top alternatives", "logprobs")
    return {"prompts": _prompts(body), "max_tokens": _int_field(body, "max_tokens", 16, 1),
            "temperature": float(temperature), "n": _int_field(body, "n", 1, 1, MAX_N),
            "seed": _int_field(body, "seed", None, 0, 2**63 - 1), "logprobs": logprobs is not None}


def check_context(ids: list[list[int]], max_tokens: int, context: int) -> None:
    """Every prompt leaves room for max_tokens in the teacher's context (else a 400 naming the prompt)."""
    for i, p in enumerate(ids):
        if len(p) + max_tokens > context:
            raise RequestError(400, f"prompt {i} has {len(p)} tokens; with max_tokens={max_tokens} that is "
                               f"{len(p) + max_tokens} > the model's context of {context} tokens", "max_tokens")


# ---------------------------------------------------------------------------------------------------
# Answering it
# ---------------------------------------------------------------------------------------------------


def _decode(teacher, ids: list[list[int]], req: dict, end_id: int, batch_size: int) -> list[list]:
    """n Generations per prompt: greedy once (its n copies are equal), or n draws per prompt."""
    kw = dict(max_new_tokens=req["max_tokens"], end_id=end_id, batch_size=batch_size)
    if req["temperature"] == 0:
        return [[g] * req["n"] for g in generate(teacher, ids, method="greedy", **kw)]
    gens = generate(teacher, ids, method="sample", temperature=req["temperature"], num_return=req["n"],
                    seed=req["seed"], **kw)
    return [g if isinstance(g, list) else [g] for g in gens]


def _logprobs(tok, g) -> dict:
    """OpenAI's logprobs object for one answer; the end token is the last entry when the answer stopped."""
    ids = g.tokens + ([tok.end_id] if g.ended else [])
    tokens = [tok.decode([i]) for i in ids]
    offsets = [sum(len(t) for t in tokens[:k]) for k in range(len(tokens))]
    return {"tokens": tokens, "token_logprobs": list(g.token_logprobs), "top_logprobs": None, "text_offset": offsets}


def complete(state: dict, body) -> dict:
    """The JSON answer to one completion request (RequestError for a bad one)."""
    req = parse_request(body, state["model"])
    tok, teacher = state["tok"], state["teacher"]
    ids = [tok.render_prompt(p) for p in req["prompts"]]
    check_context(ids, req["max_tokens"], teacher.config.block_size)
    with state["lock"]:  # handlers run in threads; the model decodes one request at a time
        answers = _decode(teacher, ids, req, tok.end_id, state["batch_size"])
        state["served"] += 1
        number = state["served"]
    choices = []
    for g in (g for per_prompt in answers for g in per_prompt):
        choices.append({"index": len(choices), "text": tok.decode(g.tokens),
                        "finish_reason": "stop" if g.ended else "length",
                        "logprobs": _logprobs(tok, g) if req["logprobs"] else None})
    prompt_tokens = sum(len(p) for p in ids)
    written = sum(len(g.token_logprobs) for per_prompt in answers for g in per_prompt)
    return {"id": f"cmpl-{number}", "object": "text_completion", "created": int(time.time()),
            "model": state["model"], "system_fingerprint": state["fingerprint"], "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": written,
                      "total_tokens": prompt_tokens + written}}


def health(state: dict) -> dict:
    """What a client records about the teacher (minikd.machinery.client writes it into its sidecar)."""
    teacher = state["teacher"]
    return {"status": "ok", "model": state["model"], "system_fingerprint": state["fingerprint"],
            "tokenizer": state["tok"].fingerprint, "context": teacher.config.block_size,
            "batch_size": state["batch_size"], "teacher_checkpoint": state["checkpoint"],
            "teacher_config": teacher.config_dict() if hasattr(teacher, "config_dict") else None}


# ---------------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    """Routes three paths; turns every failure into a JSON error; logs one line per request."""

    server_version = "minikd-serve"
    timeout = 60  # seconds a connection may stay silent (a stalled client cannot hold a thread for ever)
    routes = {"/v1/completions": "POST", "/v1/models": "GET", "/health": "GET"}

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
            status, payload = 200, self._route(method, path)
        except RequestError as e:
            status, payload = e.status, error_body(e.status, e.message, e.param, e.kind)
        except Exception as e:  # a bug or a failure while decoding: this request fails, the server goes on
            status, payload = 500, error_body(500, f"{type(e).__name__}: {e}", None, "server_error")
        self._send(status, payload)
        if self.server.state["log"]:
            print(f"minikd serve: {method} {path} {status} prompts={self.n_prompts} "
                  f"{time.perf_counter() - t0:.3f}s", file=sys.stderr, flush=True)

    def _route(self, method: str, path: str) -> dict:
        if path not in self.routes:
            raise RequestError(404, f"no such path {path!r}; try POST /v1/completions, GET /v1/models, GET /health",
                               None, "not_found")
        if method != self.routes[path]:
            raise RequestError(405, f"{path} takes {self.routes[path]}, not {method}", None, "method_not_allowed")
        state = self.server.state
        if path == "/health":
            return health(state)
        if path == "/v1/models":
            return {"object": "list", "data": [{"id": state["model"], "object": "model", "owned_by": "minikd"}]}
        body = self._body()
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

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client went away: nothing to tell it

    def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's name)
        """http.server's own log lines are replaced by _handle's single line."""


def make_server(teacher, tok, host: str = "127.0.0.1", port: int = 0, model_name: str = "minikd-teacher", *,
                batch_size: int = 256, checkpoint: dict | None = None, log: bool = True) -> ThreadingHTTPServer:
    """A ThreadingHTTPServer bound to (host, port) that serves `teacher` (port 0: any free port)."""
    from minikd.model import check_vocab
    check_vocab(tok, teacher)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    teacher.eval()
    server.state = {"teacher": teacher, "tok": tok, "model": model_name, "fingerprint": teacher_fingerprint(teacher),
                    "batch_size": batch_size, "checkpoint": checkpoint, "log": log, "lock": threading.Lock(),
                    "served": 0}
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
                                "shape of OpenAI's completions API (POST /v1/completions, GET /v1/models, "
                                "GET /health). Label prompts through it with `minikd generate --api URL`.")
    p.add_argument("--teacher", default=str(runs_dir() / "default" / "teacher.pt"),
                   help="teacher checkpoint (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only; "
                   "0.0.0.0 serves the network, and no key is checked)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s; 0 = any free port)")
    p.add_argument("--model-name", default="minikd-teacher", help="the model name /v1/models lists")
    p.add_argument("--batch-size", type=int, default=256, help="rows decoded at once (as minikd generate)")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    """`minikd serve`: load the teacher, print the URL, serve until Ctrl-C."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from minikd.tokenizer import Tokenizer
    from minikd.train import load_model
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        import torch
        torch.set_num_threads(args.threads)
    if not Path(args.teacher).exists():
        raise ValueError(f"teacher checkpoint {args.teacher}: no such file (train one with "
                         "`python -m lessons.l05_train_teacher` or `minikd run`, or pass --teacher)")
    tok = Tokenizer.default()
    teacher, ckpt = load_model(args.teacher, tok, device=args.device)
    server = make_server(teacher, tok, args.host, args.port, args.model_name, batch_size=args.batch_size,
                         checkpoint={"path": str(args.teacher), "step": ckpt["step"]})
    url = server_url(server)
    print(f"minikd serve: {args.teacher} ({teacher.num_params():,} parameters) as model {args.model_name!r} "
          f"at {url}  (POST {url}/v1/completions, GET {url}/health; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("minikd serve: stopped", flush=True)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
