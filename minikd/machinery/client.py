"""Label a prompt set through an OpenAI-style server: `minikd generate --api URL`.

Sequence-level KD needs only the teacher's answers as text (Kim & Rush 2016), so the teacher may live
anywhere: `minikd serve`, a hosted chat API, or a user's vLLM / llama.cpp / Ollama endpoint. Text in,
text out, no logits. Standard library only (urllib); a learner need not read this module.

Two API styles. "completions" sends the prompt as raw text to <base>/completions (one or several
prompts a request). "chat" sends it as the user message to <base>/chat/completions (an optional system
message first, one prompt a request): the server applies its model's own chat template, which is what a
hosted instruction-tuned or reasoning teacher expects. The answer is choices[].message.content; a
reasoning model's separate trace (`reasoning_content` in DeepSeek's API and vLLM's reasoning parsers, or
`reasoning`) is kept in the record as "reasoning" (the worked solution DeepSeek-AI 2025 distil; absent when
the server sends none), and logprobs.content[].logprob are the token log-probs. "auto" (the CLI default)
is chat, unless several prompts go in one request or one tiny probe (max_tokens 1) gets a 404/405 from the
chat endpoint; the choice is recorded in the sidecar, so a resumed run must make the same one.

    api_dataset(url, records, out_path, max_new_tokens=..., temperature=0.0)  ->  the JSONL + sidecar of
    jobs.generate_dataset, resumable the same way (jobs._labelling_run does the bookkeeping)

The URL. The base URL an OpenAI client takes: "http://host:8000/v1" or "http://host:8000" (then /v1 is
added). Requests go to <base>/completions; <root>/health and <base>/models are read once at the start
(both optional: a server without them just tells us less). Credentials never go in the URL (refused);
the key is read from the environment variable api_key_env and sent only in the Authorization header. It
is never written to the JSONL, the sidecar or a message (a server's error text is redacted too).

A request. One request per prompt by default (prompts_per_request=1: any server of the shape takes a
string prompt), up to `concurrency` in flight; "temperature": 0 is greedy, > 0 samples with a seed per
request (a chunk sent as one request gets the chunk's own seed, as a local run would). "logprobs": 0
(completions) or true (chat) asks for the written tokens' log-probs (logprobs=False: not asked; some
hosted reasoning models refuse the field): when given, teacher_logprob = their sum and teacher_tokens = their
number less one for the end token when the answer stopped (minikd serve lists the end token last, as a
local record counts it); when not given, both are null. finish_reason "stop" -> ended=true; anything else
("length": the max_tokens limit cut the answer off) -> ended=false, and `minikd filter` drops the record.

Failures. Every request has a timeout. A dropped connection, a timeout, a 429 (its Retry-After seconds
are waited at least) or a 5xx is retried up to `retries` times, with exponential backoff and jitter; a
malformed answer too. Any other 4xx is an error at once, naming the status and the server's message. A
chunk is written only when all its answers are in: a failed run keeps its finished chunks, never half a
record, and the same command resumes it.

Exactness. Through minikd serve, greedy text is byte for byte the local text. The log-probs are floats of
the teacher's forward pass, which depend (in the last bits) on which prompts share a batch. A local run
decodes a chunk of prompts together (chunks of prompts sorted by token length); with prompts_per_request
>= chunk and a prompt set that fits one chunk, the server decodes the very same batches, rows in the same
order, and every record, log-probs and sampled answers included, equals the local one. The client has no
tokenizer, so its chunks take the prompts in order: with several chunks, or one prompt per request, the
log-probs may differ from a local run's in the last bits (the text does not, unless two tokens tie).

The sidecar. As jobs.generate_dataset's, with settings["source"] = {"kind": "api", "url", "model",
"prompts_per_request", "api_style", "system", "logprobs"}; the teacher's fingerprint, tokenizer,
checkpoint and config come from the server's /health (null for a server that does not say). A resumed
run must match them all; an answer whose system_fingerprint differs from the one at the start (the
server's teacher changed mid-run) is an error.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from pathlib import Path

from minikd.runtime import mix_seed
from minikd.machinery.labelling import _labelling_run, _prompt_set
from minikd.seqkd import decoding_settings, with_answer


MAX_BACKOFF = 30.0  # seconds: the longest wait between two tries (a Retry-After may ask for more)


class APIError(OSError):
    """The exchange with the server failed (after the retries, or at once for a 4xx other than 429);
    status: the HTTP status of that 4xx, else None."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _Retry(Exception):
    """A failure worth another try; wait: seconds the server asked for (Retry-After), if any."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


# ---------------------------------------------------------------------------------------------------
# The URL and the key
# ---------------------------------------------------------------------------------------------------


def base_urls(url: str) -> tuple[str, str]:
    """(base, root): "http://h:8000/v1" -> ("http://h:8000/v1", "http://h:8000"); "http://h:8000" the same."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--api {url!r}: expected an http(s) URL such as http://127.0.0.1:8000/v1")
    if parts.username or parts.password:
        raise ValueError("--api: the URL holds credentials; put the key in an environment variable and pass "
                         "--api-key-env VAR (api_key_env=) instead")
    if parts.query or parts.fragment:
        raise ValueError(f"--api {parts.scheme}://{parts.netloc}{parts.path}: the URL must not hold a query or "
                         "a fragment")
    path = parts.path.rstrip("/")
    base = f"{parts.scheme}://{parts.netloc}{path if path.endswith('/v1') else path + '/v1'}"
    return base, base[:-len("/v1")]


def read_key(api_key_env: str | None) -> str | None:
    """The API key from the environment variable named api_key_env (None: no key)."""
    if api_key_env is None:
        return None
    key = os.environ.get(api_key_env)
    if not key:
        raise ValueError(f"--api-key-env {api_key_env}: that environment variable is not set (or empty)")
    return key


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date (None when absent or unreadable)."""
    if not value:
        return None
    if value.strip().replace(".", "", 1).isdigit():  # seconds
        return max(0.0, float(value))
    try:  # else an HTTP date
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------
# One call, with retries
# ---------------------------------------------------------------------------------------------------


class Client:
    """Calls to one server: JSON in and out, a timeout per try, retries with backoff, the key in a header."""

    def __init__(self, url: str, *, key: str | None = None, timeout: float = 60.0, retries: int = 5,
                 backoff: float = 0.5, log=None):
        self.base, self.root = base_urls(url)
        self.key, self.timeout, self.retries, self.backoff = key, timeout, retries, backoff
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.stopped = threading.Event()  # set when the run is over: calls still in flight stop retrying

    def safe(self, text: str) -> str:
        """`text` with the key blanked out (a server may echo what it was sent)."""
        return text.replace(self.key, "***") if self.key else text

    def call(self, method: str, url: str, body: dict | None = None, parse=lambda answer: answer,
             optional: bool = False):
        """parse(the JSON answer) after up to retries + 1 tries; optional: a 4xx or a non-JSON answer -> None."""
        for attempt in range(self.retries + 1):
            try:
                return self._once(method, url, body, parse, optional)
            except _Retry as e:
                if attempt == self.retries or self.stopped.is_set():
                    raise APIError(self.safe(f"{method} {url}: gave up after {attempt + 1} tries: {e}")) from None
                wait = max(e.wait or 0.0, min(MAX_BACKOFF, self.backoff * 2 ** attempt) * random.uniform(0.5, 1.0))
                self.log(self.safe(f"api: {method} {url}: {e}; retry {attempt + 1}/{self.retries} in {wait:.2f}s"))
                self.stopped.wait(wait)

    def _once(self, method: str, url: str, body: dict | None, parse, optional: bool):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            return self._http_error(e, url, optional)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:  # refused, reset, timed out, cut
            raise _Retry(f"{type(e).__name__}: {getattr(e, 'reason', e)}") from None
        try:
            return parse(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
            if optional:
                return None
            raise _Retry(f"a malformed answer ({type(e).__name__}: {e})") from None

    def _http_error(self, e: urllib.error.HTTPError, url: str, optional: bool):
        """429 and 5xx: try again; any other status: an error now (or None for an optional call)."""
        message = _error_message(e)
        if e.code == 429:
            raise _Retry(f"HTTP 429 (rate limited): {message}", retry_after(e.headers.get("Retry-After")))
        if e.code >= 500:
            raise _Retry(f"HTTP {e.code}: {message}")
        if optional:
            return None
        raise APIError(self.safe(f"{url}: HTTP {e.code}: {message}"), e.code)


def _error_message(e: urllib.error.HTTPError) -> str:
    """The server's error text: OpenAI's {"error": {"message": ...}}, else the start of the body."""
    try:
        text = e.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return e.reason or "(no body)"
    try:
        error = json.loads(text).get("error")
        return str(error.get("message", error) if isinstance(error, dict) else error)
    except (ValueError, AttributeError):
        return text.strip()[:300] or str(e.reason)


# ---------------------------------------------------------------------------------------------------
# What the server says: its teacher, its model name, its answers
# ---------------------------------------------------------------------------------------------------


def server_info(client: Client, model: str | None) -> tuple[dict, str | None]:
    """(the /health JSON or {}, the model name: the one given, else the first that /v1/models lists)."""
    health = client.call("GET", f"{client.root}/health", optional=True)
    health = health if isinstance(health, dict) else {}
    if model is None:
        listed = client.call("GET", f"{client.base}/models", parse=lambda a: a["data"][0]["id"], optional=True)
        model = listed if isinstance(listed, str) else None
    return health, model


def _choices(answer: dict, n: int) -> list[dict]:
    """The answer's choices, n of them, in index order (a malformed answer raises: it is retried)."""
    choices = answer["choices"]
    if not isinstance(choices, list) or len(choices) != n:
        got = len(choices) if isinstance(choices, list) else repr(choices)
        raise ValueError(f"expected {n} choices, got {got}")
    return sorted(choices, key=lambda c: c.get("index", 0))


def _string(value, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    return value


def parse_answer(answer: dict, n_prompts: int) -> dict:
    """The completions JSON -> {"fingerprint", "choices": one {text, finish_reason, token_logprobs} per prompt}.
    A malformed answer raises (ValueError, KeyError, TypeError): it is retried."""
    choices = [{"text": _string(c["text"], "choice text"), "finish_reason": c.get("finish_reason"),
                "token_logprobs": (c.get("logprobs") or {}).get("token_logprobs")} for c in _choices(answer, n_prompts)]
    return {"fingerprint": answer.get("system_fingerprint"), "choices": choices}


def parse_chat_answer(answer: dict, n_prompts: int = 1) -> dict:
    """The chat JSON -> the same shape: message.content is the text, logprobs.content[].logprob the
    token log-probs, and a reasoning model's separate trace (`reasoning_content`, as DeepSeek's API and
    vLLM's reasoning parsers name it, or `reasoning`) is kept as "reasoning"."""
    choices = []
    for c in _choices(answer, n_prompts):
        message = c["message"]
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        content = (c.get("logprobs") or {}).get("content")
        choices.append({"text": _string(message["content"], "message content"), "finish_reason": c.get("finish_reason"),
                        "token_logprobs": [t.get("logprob") for t in content] if isinstance(content, list) else None,
                        **({"reasoning": _string(reasoning, "message reasoning")} if reasoning else {})})
    return {"fingerprint": answer.get("system_fingerprint"), "choices": choices}


def answer_fields(choice: dict) -> dict:
    """One parsed choice -> the record's completion, teacher_logprob, teacher_tokens, ended (see the module
    docstring), and reasoning when the server sent one."""
    ended = choice.get("finish_reason") == "stop"
    lps = choice.get("token_logprobs")
    known = isinstance(lps, list) and all(isinstance(x, (int, float)) and math.isfinite(x) for x in lps)
    return {"completion": choice["text"], "teacher_logprob": sum(lps) if known else None,
            "teacher_tokens": max(0, len(lps) - ended) if known else None, "ended": ended,
            **({"reasoning": choice["reasoning"]} if "reasoning" in choice else {})}


def check_style(api_style: str, system: str | None, prompts_per_request: int) -> None:
    """The API style's arguments agree (checked before any request is sent)."""
    if api_style not in ("chat", "completions", "auto"):
        raise ValueError(f"--api-style {api_style!r}: choose chat, completions or auto")
    if api_style == "chat" and prompts_per_request > 1:
        raise ValueError("--api-style chat sends one prompt per request: drop --prompts-per-request (or use "
                         "--api-style completions)")
    if system is not None and (api_style == "completions" or prompts_per_request > 1):
        raise ValueError("--system is a chat message: use it with --api-style chat or auto, one prompt per request")


def choose_style(client: Client, api_style: str, model: str | None, prompts_per_request: int) -> str:
    """"chat" or "completions". auto: completions when several prompts go in one request (only completions
    carries a list), else chat unless one tiny probe (max_tokens 1) finds no chat endpoint (404 or 405)."""
    if api_style != "auto":
        return api_style
    if prompts_per_request > 1:
        return "completions"
    probe = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 1, **({"model": model} if model else {})}
    try:
        client.call("POST", f"{client.base}/chat/completions", probe)
    except APIError as e:
        if e.status in (404, 405):
            return "completions"
        raise APIError(f"{e} (auto's probe of the chat endpoint; pass --api-style completions to send raw "
                       "prompts instead)", e.status) from None
    return "chat"


def request_maker(client: Client, style: str, request: dict, system: str | None, logprobs: bool):
    """(url, body(prompts, seed fields), parse(answer, n)) for one API style; request: the fields every call sends."""
    if style == "completions":
        extra = {"logprobs": 0} if logprobs else {}

        def body(prompts: list[str], seed: dict) -> dict:
            return {**request, **extra, "prompt": prompts[0] if len(prompts) == 1 else prompts, **seed}
        return f"{client.base}/completions", body, parse_answer
    extra = {"logprobs": True} if logprobs else {}
    lead = [{"role": "system", "content": system}] if system is not None else []

    def chat_body(prompts: list[str], seed: dict) -> dict:
        return {**request, **extra, "messages": lead + [{"role": "user", "content": prompts[0]}], **seed}
    return f"{client.base}/chat/completions", chat_body, parse_chat_answer


# ---------------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------------


def _check_args(max_new_tokens, temperature, concurrency, timeout, retries, prompts_per_request) -> None:
    for name, value, ok in (("max_new_tokens", max_new_tokens, isinstance(max_new_tokens, int) and max_new_tokens >= 1),
                            ("temperature", temperature, 0 <= temperature < math.inf),
                            ("concurrency", concurrency, concurrency >= 1), ("timeout", timeout, timeout > 0),
                            ("retries", retries, retries >= 0),
                            ("prompts_per_request", prompts_per_request, prompts_per_request >= 1)):
        if not ok:
            raise ValueError(f"api_dataset: bad {name}={value!r}")


def _about(health: dict) -> dict:
    """What the sidecar says about a teacher behind a server (jobs._labelling_run's `about`)."""
    return {"settings": {"tokenizer": health.get("tokenizer"), "teacher": health.get("system_fingerprint")},
            "meta": {"teacher_tokenizer": health.get("tokenizer"),
                     "teacher_checkpoint": health.get("teacher_checkpoint"),
                     "teacher_config": health.get("teacher_config")},
            "length": lambda prompt: 0}  # chunks in prompt order: the client cannot count the server's tokens


def _settings(client: Client, health: dict, model, style: str, system, logprobs: bool, prompts_per_request: int,
              temperature: float, seed: int, max_new_tokens: int) -> dict:
    """The sidecar's settings: decoding as a local run's, plus where the answers came from (`source`)."""
    method = "greedy" if temperature == 0 else "sample"
    decoding = decoding_settings(method, temperature=temperature if method == "sample" else 1.0)
    source = {"kind": "api", "url": client.base, "model": model, "prompts_per_request": prompts_per_request,
              "api_style": style, "system": system, "logprobs": logprobs}
    return {**decoding, "seed": seed if method == "sample" else None, "max_new_tokens": max_new_tokens,
            "batch_size": health.get("batch_size"), "source": source}


def api_dataset(url, records, out_path, *, model=None, api_key_env=None, max_new_tokens, temperature=0.0, seed=0,
                concurrency=4, timeout=60.0, retries=5, chunk=256, overwrite=False, prompts_per_request=1,
                backoff=0.5, api_style="completions", system=None, logprobs=True) -> Path:
    """u = teacher(s) for every prompt record, through the server at `url`; writes the JSONL and sidecar of
    jobs.generate_dataset (see the module docstring) and returns out_path.

    temperature 0 = greedy, > 0 = sampling (seed); backoff: the first retry's wait in seconds (doubling);
    api_style: completions, chat or auto; system: a system message (chat only); logprobs: ask for them.
    """
    records = _prompt_set(records)
    _check_args(max_new_tokens, temperature, concurrency, timeout, retries, prompts_per_request)
    check_style(api_style, system, prompts_per_request)
    client = Client(url, key=read_key(api_key_env), timeout=timeout, retries=retries, backoff=backoff)
    health, model = server_info(client, model)
    style = choose_style(client, api_style, model, prompts_per_request)
    if api_style == "auto":
        print(f"generate: API style auto -> {style} ({client.base}/{'chat/' if style == 'chat' else ''}completions)",
              flush=True)
    if system is not None and style != "chat":
        raise ValueError(f"--system needs a chat endpoint; {client.base} has none (auto chose completions)")
    settings = _settings(client, health, model, style, system, logprobs, prompts_per_request, temperature, seed,
                         max_new_tokens)
    method = settings["method"]
    request = {"max_tokens": max_new_tokens, "temperature": float(temperature), "n": 1,
               **({"model": model} if model else {})}
    target, make_body, parse = request_maker(client, style, request, system, logprobs)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="minikd-api")
    failed: list[APIError] = []  # the first request that fails ends the run: no new request is sent

    def ask(prompts: list[str], request_seed: int | None) -> list[dict]:
        if failed:
            raise failed[0]
        body = make_body(prompts, {"seed": request_seed} if method == "sample" else {})
        try:
            answer = client.call("POST", target, body, lambda a: parse(a, len(prompts)))
            _same_teacher(client, health, answer)
        except APIError as e:
            failed.append(e)
            client.stopped.set()  # calls in flight stop retrying
            raise
        return [answer_fields(c) for c in answer["choices"]]

    def label_chunk(part: list[dict], chunk_seed: int) -> list[dict]:
        groups = [part[s:s + prompts_per_request] for s in range(0, len(part), prompts_per_request)]
        seeds = [chunk_seed] if len(groups) == 1 else [mix_seed(chunk_seed, j) for j in range(len(groups))]
        futures = [pool.submit(ask, [r["prompt"] for r in g], s) for g, s in zip(groups, seeds)]
        try:
            fields = [f for future in futures for f in future.result()]
        except APIError:
            raise failed[0] from None  # the error that ended the run, not a later one it caused
        return [with_answer({k: v for k, v in r.items() if k != "reasoning"}, f) for r, f in zip(part, fields)]

    try:
        return _labelling_run(None, None, records, out_path, settings, label_chunk, rank=0, world_size=1, chunk=chunk,
                              teacher_ckpt=None, overwrite=overwrite, stale="error",
                              label=f"generate ({method})", about=_about(health))
    finally:
        client.stopped.set()
        pool.shutdown(wait=False, cancel_futures=True)


def _same_teacher(client: Client, health: dict, answer: dict) -> None:
    """An answer from another teacher than the one /health named at the start is an error (no retry)."""
    expected = health.get("system_fingerprint")
    if expected is not None and answer["fingerprint"] not in (None, expected):
        raise APIError(f"{client.base}: the server's teacher changed during the run (system_fingerprint "
                       f"{expected} at the start, {answer['fingerprint']} now); start again with --overwrite")
