"""Chat as the teacher's API, a server a classroom can share (minikd.machinery.serve, minikd.machinery.client).

The official `openai` SDK is the client a learner or a hosted-API user has: it calls completions and chat
on a `minikd serve` subprocess started with a key (127.0.0.1 only; bounded request counts, timeouts and
no retries, so a lost request shows). Dynamic batching is checked in this process: requests that arrive
together are decoded as one batch, and each greedy answer is the one the prompt gets decoded alone. The
fault-injecting server speaks chat too: retries, cut-off answers, a reasoning model's trace, and the
auto probe. No key ever lands in a log, a record, a sidecar or a message.
"""

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest
from fault_server import FaultServer

from cli_run import run
from minikd.data import read_jsonl, read_meta, write_jsonl
from minikd.generate import generate
from minikd.machinery.client import APIError, api_dataset
from minikd.machinery.serve import serve_in_background
from minikd.model import GPT, get_config
from minikd.tokenizer import Tokenizer
from minikd.train import save_checkpoint

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-class-0123456789-never-in-a-file"
KEY_ENV = "MINIKD_TEST_SERVE_KEY"
MODEL = "minikd-teacher"
FAST = dict(backoff=0.01, timeout=10.0)


def unlabelled(n):
    return list(read_jsonl(ROOT / "data" / "unlabelled.jsonl"))[:n]


def ending_gpt(tok, seed=0):
    """A tiny untrained GPT whose end token is boosted: some answers stop early, others are cut off."""
    import torch
    torch.manual_seed(seed)
    model = GPT(get_config("tiny", vocab_size=tok.vocab_size)).eval()
    with torch.no_grad():
        model.wte.weight[tok.end_id] *= 3
    return model


def post(url, body, key=None, raw=None):
    """(status, JSON answer) of one POST (a GET when there is no body); key: the bearer key to send (None:
    no Authorization header)."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.default()


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory, tok):
    path = tmp_path_factory.mktemp("chat") / "teacher.pt"
    save_checkpoint(path, ending_gpt(tok), step=3, fingerprint=tok.fingerprint)
    return path


@pytest.fixture(scope="module")
def served(teacher_ckpt):
    """`python -m minikd serve --api-key-env ...` on 127.0.0.1, batching on; stderr (its log) to a file."""
    log = teacher_ckpt.with_name("serve.log")
    cmd = [sys.executable, "-m", "minikd", "serve", "--teacher", str(teacher_ckpt), "--port", "0", "--threads", "1",
           "--device", "cpu", "--api-key-env", KEY_ENV, "--batch-window-ms", "20"]
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, KEY_ENV: KEY})
    try:
        line = proc.stdout.readline()
        assert " at http://127.0.0.1:" in line, f"minikd serve did not start: {line!r} {log.read_text()[-800:]}"
        yield {"url": line.split(" at ")[1].split()[0], "proc": proc, "log": log, "banner": line}
    finally:
        proc.kill()
        proc.wait()


def sdk(served, key=KEY):
    return openai.OpenAI(base_url=served["url"] + "/v1", api_key=key, max_retries=0, timeout=60)


# ---------------------------------------------------------------------------------------------------
# The official SDK against `minikd serve`
# ---------------------------------------------------------------------------------------------------


def test_without_the_right_key_every_path_is_a_401_json_error(served):
    for key in (None, "sk-wrong", KEY + "x", KEY[:-1]):
        for path, body in (("/v1/chat/completions", {"messages": [{"role": "user", "content": "Sort 3 1 2."}]}),
                           ("/v1/completions", {"prompt": "x"}), ("/v1/models", None), ("/health", None)):
            status, answer = post(served["url"] + path, body, key=key)
            assert status == 401 and answer["error"]["type"] == "authentication_error", (key, path)
    with pytest.raises(openai.AuthenticationError):
        sdk(served, "sk-wrong").chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert [m.id for m in sdk(served).models.list()] == [MODEL]


def test_the_sdk_calls_completions_n_logprobs_and_the_length_cut_off(served):
    client = sdk(served)
    prompts = [r["prompt"] for r in unlabelled(6)]
    a = client.completions.create(model=MODEL, prompt=prompts, max_tokens=3, temperature=0, logprobs=0)
    assert len(a.choices) == 6 and a.system_fingerprint
    for c in a.choices:
        lps = c.logprobs.token_logprobs
        assert c.finish_reason == ("stop" if c.logprobs.tokens[-1] == "<|end|>" else "length")
        assert c.finish_reason == "stop" or len(lps) == 3, "length: max_tokens tokens written, no end token"
    assert {"stop", "length"} == {c.finish_reason for c in a.choices}, "both finish reasons occur"
    draws = client.completions.create(model=MODEL, prompt=prompts[0], max_tokens=4, temperature=1.0, n=3, seed=7)
    again = client.completions.create(model=MODEL, prompt=prompts[0], max_tokens=4, temperature=1.0, n=3, seed=7)
    assert len(draws.choices) == 3 and [c.text for c in draws.choices] == [c.text for c in again.choices]


def test_the_sdk_calls_chat_and_it_answers_what_completions_answers(served):
    client = sdk(served)
    for r in unlabelled(4):
        chat = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": r["prompt"]}],
                                              max_tokens=5, temperature=0, logprobs=True)
        plain = client.completions.create(model=MODEL, prompt=r["prompt"], max_tokens=5, temperature=0, logprobs=0)
        (c,), (p,) = chat.choices, plain.choices
        assert chat.object == "chat.completion" and c.message.role == "assistant"
        assert (c.message.content, c.finish_reason) == (p.text, p.finish_reason), "the same template, the same text"
        assert [t.token for t in c.logprobs.content] == p.logprobs.tokens
        assert [t.logprob for t in c.logprobs.content] == pytest.approx(p.logprobs.token_logprobs, abs=1e-5)
    n = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Sort 3 1 2."}],
                                       max_completion_tokens=4, temperature=1.0, n=4, seed=1)
    assert len(n.choices) == 4 and [c.index for c in n.choices] == [0, 1, 2, 3]


CHAT_BAD = [  # (what, body, param)
    ("no messages", {"max_tokens": 4}, "messages"),
    ("empty messages", {"messages": []}, "messages"),
    ("messages not a list", {"messages": "Sort 3 1 2."}, "messages"),
    ("a message not an object", {"messages": ["Sort 3 1 2."]}, "messages[0]"),
    ("content not a string", {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
     "messages[0].content"),
    ("no content", {"messages": [{"role": "user"}]}, "messages[0].content"),
    ("unknown role", {"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ("a system message", {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x"}]},
     "messages[0].role"),
    ("several user turns", {"messages": [{"role": "user", "content": "x"}, {"role": "user", "content": "y"}]},
     "messages"),
    ("an assistant turn", {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]},
     "messages[1].role"),
    ("tools", {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, "tools"),
    ("functions", {"messages": [{"role": "user", "content": "x"}], "functions": [{"name": "f"}]}, "functions"),
    ("response_format", {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}},
     "response_format"),
    ("stream", {"messages": [{"role": "user", "content": "x"}], "stream": True}, "stream"),
    ("top_logprobs", {"messages": [{"role": "user", "content": "x"}], "logprobs": True, "top_logprobs": 3},
     "top_logprobs"),
    ("max_tokens beyond the context", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 999},
     "max_tokens"),
    ("another model", {"messages": [{"role": "user", "content": "x"}], "model": "gpt-9"}, "model"),
]


def test_bad_chat_requests_get_a_400_naming_the_field_and_the_server_keeps_serving(served):
    for what, body, param in CHAT_BAD:
        status, answer = post(served["url"] + "/v1/chat/completions", body, key=KEY)
        assert (status in (400, 404), answer["error"]["param"]) == (True, param), what
        assert answer["error"]["message"], what
    with pytest.raises(openai.BadRequestError) as error:  # the SDK shows the field too
        sdk(served).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}],
                                            response_format={"type": "json_object"})
    assert error.value.param == "response_format"
    answer = sdk(served).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Sort 3 1 2."}],
                                                 max_tokens=3, temperature=0)
    assert answer.choices[0].finish_reason in ("stop", "length") and served["proc"].poll() is None


def test_64_concurrent_sdk_clients_lose_no_request_and_their_requests_share_batches(served):
    """A class labelling at once: 64 clients (no retries) x 2 requests, chat and completions."""
    prompts = [r["prompt"] for r in unlabelled(64)]
    answers, errors, start = {}, [], threading.Barrier(64)

    def learner(i):
        client = sdk(served)
        try:
            start.wait(timeout=60)
            c = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompts[i]}],
                                               max_tokens=4, temperature=0)
            p = client.completions.create(model=MODEL, prompt=prompts[i], max_tokens=4, temperature=0)
            answers[i] = (c.choices[0].message.content, p.choices[0].text)
        except Exception as e:  # noqa: BLE001 (counted: every lost request fails the test)
            errors.append(f"{type(e).__name__}: {e}")

    status, before = post(served["url"] + "/health", None, key=KEY)
    threads = [threading.Thread(target=learner, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, f"{len(errors)} lost requests, e.g. {errors[:3]}"
    assert len(answers) == 64 and all(c == p for c, p in answers.values()), "chat and completions agree"
    after = post(served["url"] + "/health", None, key=KEY)[1]["batching"]
    requests = after["requests"] - before["batching"]["requests"]
    calls = after["decode_calls"] - before["batching"]["decode_calls"]
    assert requests == 128 and calls < requests, f"{requests} requests in {calls} decode calls: none shared a batch"


def test_greedy_labels_through_chat_equal_those_through_completions_byte_for_byte_and_no_key_leaks(
        served, teacher_ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, KEY)
    prompts = tmp_path / "prompts.jsonl"
    write_jsonl(prompts, unlabelled(12))
    out = {style: tmp_path / f"{style}.jsonl" for style in ("chat", "completions", "auto")}
    printed = []
    for style, path in out.items():
        status, stdout, stderr = run(["generate", "--api", served["url"] + "/v1", "--api-key-env", KEY_ENV,
                                      "--api-style", style, "--concurrency", "1", "--prompts", str(prompts),
                                      "--max-new-tokens", "6", "--out", str(path)], capsys)
        assert status == 0, stderr
        printed += [stdout, stderr]
    assert out["chat"].read_bytes() == out["completions"].read_bytes(), "every record, log-probs included"
    local = tmp_path / "local.jsonl"
    assert run(["generate", "--teacher", str(teacher_ckpt), "--out", str(local), "--device", "cpu", "--prompts",
                str(prompts), "--max-new-tokens", "6"], capsys)[0] == 0
    assert [r["completion"] for r in read_jsonl(out["chat"])] == [r["completion"] for r in read_jsonl(local)]
    metas = {style: read_meta(path) for style, path in out.items()}
    assert metas["auto"]["settings"]["source"]["api_style"] == "chat", "auto chose chat, and the sidecar says so"
    assert metas["completions"]["settings"]["source"]["api_style"] == "completions"
    files = [p for path in out.values() for p in (path, Path(str(path) + ".meta.json"))]
    post(served["url"] + "/health", None, key="sk-a-wrong-key-" + KEY)  # a wrong key is not logged either
    for text in [p.read_text() for p in files] + printed + [served["log"].read_text(), served["banner"]]:
        assert KEY not in text
    assert "POST /v1/chat/completions 200" in served["log"].read_text(), "the log has one line per request"


# ---------------------------------------------------------------------------------------------------
# Dynamic batching, in this process
# ---------------------------------------------------------------------------------------------------


def _together(url: str, bodies: list[dict], path="/v1/completions") -> list[dict]:
    """Send every body at the same moment, one thread each; the answers in order."""
    answers, start = [None] * len(bodies), threading.Barrier(len(bodies))

    def one(i):
        start.wait(timeout=30)
        status, answers[i] = post(url + path, bodies[i])
        assert status == 200, answers[i]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return answers


def test_greedy_requests_decoded_as_one_batch_answer_what_each_prompt_gets_alone(tok):
    model, prompts = ending_gpt(tok, seed=1), [r["prompt"] for r in unlabelled(12)]
    alone = [generate(model, [tok.render_prompt(p)], max_new_tokens=8, end_id=tok.end_id, method="greedy")[0]
             for p in prompts]
    bodies = [{"prompt": p, "max_tokens": 8, "temperature": 0, "logprobs": 0} for p in prompts]
    with serve_in_background(model, tok, batch_window=0.5) as server:  # wide: the test machine may be busy
        answers = _together(server.url, bodies)
        batching = post(server.url + "/health", None)[1]["batching"]
    assert batching["requests"] == 12 and batching["decode_calls"] < 12, f"no request shared a batch: {batching}"
    for g, a in zip(alone, answers):
        (c,) = a["choices"]
        assert (c["text"], c["finish_reason"]) == (tok.decode(g.tokens), "stop" if g.ended else "length")
        assert c["logprobs"]["token_logprobs"] == pytest.approx(g.token_logprobs, abs=1e-5)


def test_batching_off_decodes_one_request_at_a_time_and_sampled_requests_are_never_merged(tok):
    model, prompts = ending_gpt(tok), [r["prompt"] for r in unlabelled(4)]
    greedy = [{"prompt": p, "max_tokens": 4, "temperature": 0} for p in prompts]
    sampled = [{"prompt": prompts[0], "max_tokens": 6, "temperature": 1.0, "n": 3, "seed": 11}] * 4
    with serve_in_background(model, tok, batch_window=0) as server:
        _together(server.url, greedy)
        assert post(server.url + "/health", None)[1]["batching"] == {"window_ms": 0, "decode_calls": 4,
                                                                     "requests": 4}
    with serve_in_background(model, tok, batch_window=0.25) as server:
        draws = _together(server.url, sampled)
        batching = post(server.url + "/health", None)[1]["batching"]
    assert batching["decode_calls"] == 4, "a sampled request's seed fixes its draws: it is decoded alone"
    assert len({json.dumps([c["text"] for c in a["choices"]]) for a in draws}) == 1, "the same seed, the same draws"


def test_a_key_set_in_process_is_checked_and_the_server_holds_only_its_digest(tok):
    with serve_in_background(ending_gpt(tok), tok, api_key=KEY) as server:
        assert post(server.url + "/v1/models", None)[0] == 401
        assert post(server.url + "/v1/models", None, key=KEY)[0] == 200
        assert KEY not in repr(server.server.state), "the key itself is not kept"
    with pytest.raises(ValueError, match="api_key is empty"):
        serve_in_background(ending_gpt(tok), tok, api_key="")


# ---------------------------------------------------------------------------------------------------
# The client against a faulty chat server
# ---------------------------------------------------------------------------------------------------


def test_the_client_retries_chat_faults_keeps_reasoning_and_never_leaks_the_key(tmp_path, tok, monkeypatch, capsys):
    monkeypatch.setenv("MINIKD_TEST_KEY", KEY)
    prompts = [{"id": f"q{i}", "prompt": f"Sort {i} 1 2.", "reasoning": "an old trace"} for i in range(6)]
    fault = FaultServer(["drop", "429", "500", "half", "garbage", "slow"], cut={"Sort 2 1 2."},
                        reasoning="reasoning_content")
    try:
        out = api_dataset(fault.url, prompts, tmp_path / "chat.jsonl", api_key_env="MINIKD_TEST_KEY",
                          max_new_tokens=8, concurrency=1, retries=6, chunk=4, backoff=0.01, timeout=0.4,
                          api_style="chat", system="Answer briefly.")
    finally:
        fault.close()
    records = list(read_jsonl(out))
    assert [r["completion"] for r in records] == [f"Sort {i} 1 2. -> done" for i in range(6)]
    assert [r["reasoning"] for r in records] == [f"thinking about Sort {i} 1 2." for i in range(6)], "the trace kept"
    assert [r["ended"] for r in records] == [True, True, False, True, True, True]
    assert [e["action"] for e in fault.log][:7] == ["drop", "429", "500", "half", "garbage", "slow", "ok"]
    assert {e["path"] for e in fault.log} == {"/v1/chat/completions"}
    first = fault.log[0]["body"]
    assert first["messages"] == [{"role": "system", "content": "Answer briefly."},
                                 {"role": "user", "content": "Sort 0 1 2."}] and first["logprobs"] is True
    source = read_meta(out)["settings"]["source"]
    assert (source["api_style"], source["system"]) == ("chat", "Answer briefly.")
    printed = capsys.readouterr()
    assert "retry 1/6" in printed.err
    for text in (out.read_text(), Path(str(out) + ".meta.json").read_text(), printed.out, printed.err):
        assert KEY not in text


@pytest.mark.parametrize("chat, field, style", [(True, "reasoning", "chat"), (False, None, "completions")])
def test_auto_probes_once_for_chat_and_records_the_choice(tmp_path, chat, field, style):
    prompts = [{"id": f"q{i}", "prompt": f"Sort {i} 1 2."} for i in range(3)]
    fault = FaultServer(chat=chat, reasoning=field)
    try:
        out = api_dataset(fault.url, prompts, tmp_path / "auto.jsonl", max_new_tokens=4, api_style="auto",
                          logprobs=False, **FAST)
        log = list(fault.log)
        with pytest.raises(ValueError, match="not made with these settings"):  # resuming with another style
            api_dataset(fault.url, prompts, out, max_new_tokens=4, api_style="completions" if chat else "chat",
                        logprobs=False, **FAST)
    finally:
        fault.close()
    assert read_meta(out)["settings"]["source"]["api_style"] == style
    paths = [e["path"] for e in log]
    assert paths == (["/v1/chat/completions"] * 4 if chat else ["/v1/completions"] * 3), "one probe, then the prompts"
    assert all("logprobs" not in e["body"] for e in log), "--no-logprobs: the field is not sent"
    records = list(read_jsonl(out))
    assert [("reasoning" in r) for r in records] == [chat] * 3


def test_a_chat_400_is_an_error_at_once_and_system_needs_chat(tmp_path, capsys):
    fault = FaultServer(["400"])
    try:
        with pytest.raises(APIError, match="HTTP 400") as error:
            api_dataset(fault.url, [{"id": "a", "prompt": "x"}], tmp_path / "x.jsonl", max_new_tokens=4,
                        api_style="chat", **FAST)
    finally:
        fault.close()
    assert error.value.status == 400 and len(fault.log) == 1
    status, _, err = run(["generate", "--api", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "y.jsonl"),
                          "--max-new-tokens", "4", "--api-style", "completions", "--system", "Be brief."], capsys)
    assert status == 2 and "--system" in err and len(err.strip().splitlines()) == 1, err
    status, _, err = run(["generate", "--api", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "y.jsonl"),
                          "--max-new-tokens", "4", "--api-style", "chat", "--prompts-per-request", "8"], capsys)
    assert status == 2 and "one prompt per request" in err, err


# ---------------------------------------------------------------------------------------------------
# The serve benchmark's counting (its speeds are measurements for the README, never asserted)
# ---------------------------------------------------------------------------------------------------


def test_the_serve_benchmark_counts_every_request_and_every_failure(tok):
    from minikd.machinery.serve_bench import one_level
    prompts = [r["prompt"] for r in unlabelled(8)]
    with serve_in_background(ending_gpt(tok), tok, batch_window=0.005) as server:
        r = one_level(server.url, clients=4, per_client=3, prompts=prompts, max_tokens=4)
        url = server.url
    assert (r["requests"], r["failed"]) == (12, 0) and r["requests_per_s"] > 0 and r["p95_ms"] >= r["p50_ms"] > 0
    gone = one_level(url, clients=2, per_client=2, prompts=prompts, max_tokens=4)  # the server is closed
    assert (gone["requests"], gone["failed"]) == (4, 4) and gone["errors"], "a failed request is counted, not hidden"


def test_serve_with_an_unset_key_variable_is_a_one_line_error(capsys):
    status, _, err = run(["serve", "--api-key-env", "MINIKD_UNSET_SERVE_KEY", "--teacher", "nowhere.pt"], capsys)
    assert status == 2 and "MINIKD_UNSET_SERVE_KEY: that environment variable is not set" in err, err
    assert len(err.strip().splitlines()) == 1
