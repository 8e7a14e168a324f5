"""The teacher as a text-only HTTP API: `minikd serve` (minikd.machinery.serve) and `minikd generate --api` (minikd.machinery.client).

The real thing: `minikd serve` runs in a subprocess on a free port; greedy labelling through it equals
local labelling byte for byte; killed mid-run and restarted, the resumed file loses and duplicates
nothing; bad requests get a 4xx JSON error and the server keeps serving. A fault-injecting server
(tests/fault_server.py) drops connections, rate-limits, fails, stalls and cuts answers: the client
retries, records truncation, keeps the key out of every file and message, and never writes half a record.
"""

import json
import math
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from fault_server import FaultServer
from test_jobs import PROMPTS, TABLE, MixtureLM

from cli_run import run
from minikd.machinery.client import APIError, api_dataset
from minikd.data import read_jsonl, read_meta, write_jsonl
from minikd.machinery.labelling import filter_dataset, generate_dataset, teacher_fingerprint
from minikd.model import GPT, get_config
from minikd.machinery.serve import serve_in_background
from minikd.tokenizer import Tokenizer
from minikd.train import load_model, save_checkpoint

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-0123456789-do-not-leak"
FAST = dict(backoff=0.01, timeout=10.0)  # tests wait centiseconds between tries, not seconds


def unlabelled(n):
    return list(read_jsonl(ROOT / "data" / "unlabelled.jsonl"))[:n]


def ending_gpt(tok):
    """A tiny untrained GPT whose end token's embedding is scaled up: some answers stop after a token or
    two, the others run to max_new_tokens — both finish reasons from a real model."""
    torch.manual_seed(0)
    model = GPT(get_config("tiny", vocab_size=tok.vocab_size)).eval()
    with torch.no_grad():
        model.wte.weight[tok.end_id] *= 3
    return model


def call(url, body=None, method=None, data=None):
    """(status, JSON answer) of one request; body is sent as JSON, data as raw bytes."""
    if body is not None:
        data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class Served:
    """`python -m minikd serve` in a subprocess. It starts at once (torch takes seconds to import, so the
    in-process tests run meanwhile); .url waits for the line that names it."""

    def __init__(self, ckpt: Path, log: Path, port: int = 0):
        self.ckpt, self.log = ckpt, log
        self.start(port)

    def start(self, port: int) -> None:
        cmd = [sys.executable, "-m", "minikd", "serve", "--teacher", str(self.ckpt), "--port", str(port),
               "--threads", "1", "--device", "cpu"]
        with open(self.log, "a") as err:  # a file, not a pipe: one line per request would fill a pipe
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        self._url = None

    @property
    def url(self) -> str:
        if self._url is None:
            line = self.proc.stdout.readline()
            assert " at http://" in line, f"minikd serve did not start: {line!r} {self.log.read_text()[-800:]}"
            self._url = line.split(" at ")[1].split()[0]
        return self._url

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.default()


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory, tok):
    path = tmp_path_factory.mktemp("serve") / "teacher.pt"
    save_checkpoint(path, ending_gpt(tok), step=7, fingerprint=tok.fingerprint)
    return path


@pytest.fixture(scope="module", autouse=True)
def served(teacher_ckpt):
    server = Served(teacher_ckpt, teacher_ckpt.with_name("serve.log"))
    yield server
    server.kill()


# ---------------------------------------------------------------------------------------------------
# The server, in this process: the OpenAI completions shape
# ---------------------------------------------------------------------------------------------------


def test_the_server_answers_in_the_completions_shape(tok):
    mix = MixtureLM(tok, TABLE)
    with serve_in_background(mix, tok, model_name="mix") as server:
        status, a = call(f"{server.url}/v1/completions", {"prompt": ["Sort 3 1 2.", "What is 4 + 4?"],
                                                          "max_tokens": 12, "temperature": 0, "logprobs": 0})
        assert status == 200 and a["object"] == "text_completion" and a["model"] == "mix"
        assert a["system_fingerprint"] == teacher_fingerprint(mix)
        first, second = a["choices"]
        assert (first["index"], first["text"], first["finish_reason"]) == (0, "2 1 3", "stop")
        assert first["logprobs"]["tokens"][-1] == "<|end|>", "the end token's log-prob is the last entry"
        assert sum(first["logprobs"]["token_logprobs"]) == pytest.approx(math.log(0.6), abs=1e-5)
        assert second["finish_reason"] == "length" and second["text"] == "1 1 1 1 1 1 "
        assert a["usage"]["completion_tokens"] == len(first["logprobs"]["tokens"]) + 12

        draws = {"prompt": "Sort 3 1 2.", "max_tokens": 12, "temperature": 1.0, "n": 8, "seed": 5}
        status, a = call(f"{server.url}/v1/completions", draws)
        texts = [c["text"] for c in a["choices"]]
        assert status == 200 and len(texts) == 8 and set(texts) == {"2 1 3", "1 2 3"}
        assert a["choices"][0]["logprobs"] is None, "log-probs only when asked for"
        assert [c["text"] for c in call(f"{server.url}/v1/completions", draws)[1]["choices"]] == texts, "seeded"

        status, h = call(f"{server.url}/health")
        assert status == 200 and h["status"] == "ok" and h["model"] == "mix" and h["tokenizer"] == tok.fingerprint
        assert call(f"{server.url}/v1/models")[1]["data"][0]["id"] == "mix"


def test_a_model_whose_floats_ignore_the_batch_gives_the_local_file_through_any_request_size(tmp_path, tok):
    """MixtureLM's log-probs are exact table values: one prompt per request gives the local bytes too."""
    mix = MixtureLM(tok, TABLE)
    local = generate_dataset(mix, tok, PROMPTS, tmp_path / "local.jsonl", max_new_tokens=12)
    with serve_in_background(mix, tok) as server:
        api = api_dataset(server.url, PROMPTS, tmp_path / "api.jsonl", max_new_tokens=12, concurrency=3, **FAST)
    assert api.read_bytes() == local.read_bytes()
    assert [r["ended"] for r in read_jsonl(api)] == [True, True, True, True, False]


def test_sampling_a_chunk_in_one_request_equals_local_sampling(tmp_path, tok):
    model, prompts = ending_gpt(tok), unlabelled(8)
    local = generate_dataset(model, tok, prompts, tmp_path / "local.jsonl", method="sample", temperature=1.5,
                             seed=3, max_new_tokens=6)
    with serve_in_background(model, tok) as server:
        api = api_dataset(server.url, prompts, tmp_path / "api.jsonl", max_new_tokens=6, temperature=1.5, seed=3,
                          prompts_per_request=256, **FAST)
    assert api.read_bytes() == local.read_bytes(), "the chunk's own seed, the same batches: the same draws"


def test_a_server_restarted_within_the_retry_window_is_waited_for(tmp_path, tok):
    model, prompts = ending_gpt(tok), unlabelled(24)
    first = serve_in_background(model, tok)
    port = int(first.url.rsplit(":", 1)[1])
    out, result = tmp_path / "api.jsonl", {}

    def client():
        try:
            result["path"] = api_dataset(first.url, prompts, out, max_new_tokens=8, chunk=4, retries=10, **FAST)
        except Exception as e:  # noqa: BLE001 (reported by the assertion below)
            result["error"] = e

    thread = threading.Thread(target=client)
    thread.start()
    while thread.is_alive() and (not out.exists() or out.read_bytes().count(b"\n") < 4):
        time.sleep(0.002)
    first.close()  # gone mid-run: the client's requests are refused
    time.sleep(0.2)
    second = serve_in_background(model, tok, port=port)
    thread.join()
    second.close()
    assert "error" not in result, result.get("error")
    assert [r["id"] for r in read_jsonl(out)] == [p["id"] for p in prompts]


# ---------------------------------------------------------------------------------------------------
# The real thing: `minikd serve` in a subprocess
# ---------------------------------------------------------------------------------------------------


def test_greedy_through_minikd_serve_equals_local_generation_byte_for_byte(served, teacher_ckpt, tok, tmp_path,
                                                                           capsys):
    prompts = tmp_path / "prompts.jsonl"
    write_jsonl(prompts, unlabelled(10))
    common = ["--prompts", str(prompts), "--max-new-tokens", "8"]
    local, api, api1 = tmp_path / "local.jsonl", tmp_path / "api.jsonl", tmp_path / "api1.jsonl"
    assert run(["generate", "--teacher", str(teacher_ckpt), "--out", str(local), "--device", "cpu"] + common,
               capsys)[0] == 0
    status, out, err = run(["generate", "--api", served.url + "/v1", "--out", str(api), "--prompts-per-request",
                            "256"] + common, capsys)
    assert status == 0 and "generate (greedy) done: 10 prompts" in out, err
    assert api.read_bytes() == local.read_bytes(), "the same records, log-probs included"
    ended = [r["ended"] for r in read_jsonl(api)]
    assert True in ended and False in ended, "both finish reasons occur"

    meta_local, meta_api = read_meta(local), read_meta(api)
    source = meta_api["settings"].pop("source")
    assert source == {"kind": "api", "url": served.url + "/v1", "model": "minikd-teacher", "prompts_per_request": 256,
                      "api_style": "completions", "system": None, "logprobs": True}, "auto: several prompts a request"
    for meta in (meta_local, meta_api):
        meta.pop("seconds")
    assert meta_api == meta_local, "the sidecar names the same teacher, checkpoint, tokenizer and settings"

    # One prompt per request (the default, for any server): the same text; the log-probs are floats of
    # other batches (see minikd.machinery.client's docstring), equal to about 1e-6.
    assert run(["generate", "--api", served.url, "--out", str(api1), "--concurrency", "3"] + common, capsys)[0] == 0
    for a, b in zip(read_jsonl(api1), read_jsonl(local)):
        assert {**a, "teacher_logprob": 0} == {**b, "teacher_logprob": 0}
        assert a["teacher_logprob"] == pytest.approx(b["teacher_logprob"], abs=1e-4)

    report = filter_dataset(api, tmp_path / "kept.jsonl", tok, 128, verify=False)
    assert report["truncated"] == ended.count(False) and report["output"] == ended.count(True)


BAD = [  # (what, request kwargs for call(), status, param)
    ("no prompt", {"body": {"max_tokens": 4}}, 400, "prompt"),
    ("token-id prompt", {"body": {"prompt": [1, 2, 3]}}, 400, "prompt"),
    ("max_tokens beyond the context", {"body": {"prompt": "Sort 3 1 2.", "max_tokens": 500}}, 400, "max_tokens"),
    ("max_tokens 0", {"body": {"prompt": "Sort 3 1 2.", "max_tokens": 0}}, 400, "max_tokens"),
    ("temperature a word", {"body": {"prompt": "x", "temperature": "hot"}}, 400, "temperature"),
    ("n too large", {"body": {"prompt": "x", "n": 1000}}, 400, "n"),
    ("streaming", {"body": {"prompt": "x", "stream": True}}, 400, "stream"),
    ("another model", {"body": {"prompt": "x", "model": "gpt-9"}}, 404, "model"),
    ("not JSON", {"data": b"{prompt: oops"}, 400, None),
    ("not an object", {"data": b"[1, 2]"}, 400, None),
    ("a body over 1 MiB", {"data": b" " * (2 << 20)}, 413, None),
]


def test_bad_requests_get_a_4xx_json_error_and_the_server_keeps_serving(served):
    for what, kwargs, status, param in BAD:
        got, answer = call(f"{served.url}/v1/completions", **kwargs)
        assert (got, answer["error"]["param"]) == (status, param), what
        assert answer["error"]["message"] and answer["error"]["type"], what
    assert call(f"{served.url}/nowhere")[0] == 404
    assert call(f"{served.url}/v1/completions", method="GET")[0] == 405
    status, answer = call(f"{served.url}/v1/completions", {"prompt": "Sort 3 1 2.", "max_tokens": 4, "temperature": 0})
    assert status == 200 and answer["choices"][0]["finish_reason"] in ("stop", "length")
    assert served.proc.poll() is None, "still serving"


def test_server_killed_mid_run_then_restarted_the_resumed_file_loses_and_duplicates_nothing(served, teacher_ckpt,
                                                                                           tok, tmp_path):
    """The last test of the subprocess server: it kills it. The restarted teacher is served from this process
    (the same checkpoint, port, batch size and thread count: the same answers, without another torch import)."""
    prompts, out, result = unlabelled(32), tmp_path / "api.jsonl", {}
    kw = dict(max_new_tokens=8, chunk=4, concurrency=2, **FAST)

    def client():
        try:
            api_dataset(served.url, prompts, out, retries=1, **kw)
        except APIError as e:
            result["error"] = e

    thread = threading.Thread(target=client)
    thread.start()
    while thread.is_alive() and (not out.exists() or out.read_bytes().count(b"\n") < 4):
        time.sleep(0.001)
    served.kill()  # SIGKILL, mid-run
    thread.join()
    assert "gave up after 2 tries" in str(result.get("error")), result
    lines = out.read_text().splitlines()
    assert 4 <= len(lines) < len(prompts) and len(lines) % 4 == 0, "whole chunks only"
    assert all(json.loads(line)["id"] for line in lines), "no half record"

    port = int(served.url.rsplit(":", 1)[1])
    checkpoint = {"path": str(teacher_ckpt), "step": 7}
    with serve_in_background(load_model(teacher_ckpt, tok)[0], tok, port=port, checkpoint=checkpoint) as again:
        assert again.url == served.url
        api_dataset(served.url, prompts, out, **kw)  # the same command again: resumes
        straight = api_dataset(served.url, prompts, tmp_path / "straight.jsonl", **kw)
    got = list(read_jsonl(out))
    assert [r["id"] for r in got] == [p["id"] for p in prompts], "every prompt exactly once, in order"
    assert got == list(read_jsonl(straight)) and read_meta(out)["complete"]


# ---------------------------------------------------------------------------------------------------
# The client against a faulty server
# ---------------------------------------------------------------------------------------------------


def test_the_client_retries_faults_records_truncation_and_never_leaks_the_key(tmp_path, tok, monkeypatch, capsys):
    monkeypatch.setenv("MINIKD_TEST_KEY", KEY)
    prompts = [{"id": f"q{i}", "prompt": f"Sort {i} 1 2."} for i in range(6)]
    fault = FaultServer(["drop", "429", "500", "half", "garbage", "slow"], cut={"Sort 2 1 2.", "Sort 4 1 2."})
    try:
        out = api_dataset(fault.url, prompts, tmp_path / "api.jsonl", api_key_env="MINIKD_TEST_KEY", max_new_tokens=8,
                          concurrency=1, retries=6, chunk=4, backoff=0.01, timeout=0.4)
    finally:
        fault.close()
    records = list(read_jsonl(out))
    assert [r["completion"] for r in records] == [f"Sort {i} 1 2. -> done" for i in range(6)]
    assert [r["ended"] for r in records] == [True, True, False, True, False, True], "finish_reason length = cut off"
    assert all(r["teacher_logprob"] is None and r["teacher_tokens"] is None for r in records), "no log-probs given"
    assert [e["action"] for e in fault.log][:7] == ["drop", "429", "500", "half", "garbage", "slow", "ok"]
    after_429 = fault.log[2]["t"] - fault.log[1]["t"]
    assert after_429 >= 0.3, f"Retry-After: 0.3 was not honoured (the next try came after {after_429:.3f}s)"
    assert {e["auth"] for e in fault.log} == {f"Bearer {KEY}"}, "the key goes in the Authorization header"

    source = read_meta(out)["settings"]["source"]
    assert source == {"kind": "api", "url": fault.url + "/v1", "model": "fault-model", "prompts_per_request": 1,
                      "api_style": "completions", "system": None, "logprobs": True}
    assert read_meta(out)["settings"]["teacher"] is None, "a server without /health: the teacher is unknown"
    report = filter_dataset(out, tmp_path / "kept.jsonl", tok, 128, verify=False)
    assert report["truncated"] == 2 and report["output"] == 4
    printed = capsys.readouterr()
    assert "retry 1/6" in printed.err
    for text in (out.read_text(), Path(str(out) + ".meta.json").read_text(), printed.out, printed.err):
        assert KEY not in text


def test_a_4xx_is_an_error_at_once_naming_status_and_message_with_the_key_blanked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIKD_TEST_KEY", KEY)
    fault = FaultServer(["400"])
    try:
        with pytest.raises(APIError, match=r"HTTP 400: bad request; you sent Bearer \*\*\*") as error:
            api_dataset(fault.url, PROMPTS, tmp_path / "api.jsonl", api_key_env="MINIKD_TEST_KEY", max_new_tokens=8,
                        concurrency=1, **FAST)
    finally:
        fault.close()
    assert len(fault.log) == 1, "a 400 is not retried"
    assert KEY not in str(error.value) and KEY not in "".join(capsys.readouterr())
    assert not (tmp_path / "api.jsonl").exists(), "no record was written"


def test_a_run_that_gives_up_keeps_whole_chunks_and_resumes(tmp_path):
    prompts = [{"id": f"q{i}", "prompt": f"Sort {i} 1 2."} for i in range(10)]
    out = tmp_path / "api.jsonl"
    fault = FaultServer()
    try:
        kw = dict(max_new_tokens=8, chunk=3, concurrency=2, **FAST)
        want = list(read_jsonl(api_dataset(fault.url, prompts, tmp_path / "straight.jsonl", **kw)))
        fault.log.clear()
        fault.script = ["ok"] * 4 + ["500"] * 20  # chunk 2 of 4 never gets all its answers
        with pytest.raises(APIError, match="gave up after 3 tries: HTTP 500"):
            api_dataset(fault.url, prompts, out, retries=2, **kw)
        lines = out.read_text().splitlines()
        assert len(lines) == 3 and all(json.loads(line) for line in lines), "chunk 1 only, whole lines"
        fault.script = []
        api_dataset(fault.url, prompts, out, retries=2, **kw)
    finally:
        fault.close()
    assert list(read_jsonl(out)) == want


# ---------------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["--max-new-tokens", "4", "--method", "beam"], "beam search"),
    ([], "--api needs --max-new-tokens"),
    (["--max-new-tokens", "4", "--api-key-env", "MINIKD_UNSET_VARIABLE"], "MINIKD_UNSET_VARIABLE: that environment"),
])
def test_generate_api_errors_are_one_line_with_exit_status_2(argv, message, tmp_path, capsys):
    status, _, err = run(["generate", "--api", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "x.jsonl"),
                          "--limit", "2"] + argv, capsys)
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_credentials_in_the_url_are_refused_and_not_echoed(tmp_path, capsys):
    status, out, err = run(["generate", "--api", f"http://user:{KEY}@127.0.0.1:9/v1", "--out", str(tmp_path / "x"),
                            "--max-new-tokens", "4"], capsys)
    assert status == 2 and "--api-key-env" in err and KEY not in out + err


def test_serve_help_and_a_missing_teacher(capsys):
    assert run(["serve", "--help"], capsys)[:2][0] == 0
    status, _, err = run(["serve", "--teacher", "nowhere.pt"], capsys)
    assert status == 2 and "nowhere.pt: no such file" in err
