"""Tests for minikd.tokenizer: the BPE trainer, tiktoken agreement, the template and its mask.

Everything here is hermetic: tokenizers are trained inside the tests in well
under a second; nothing is downloaded. Only the last tests look at the shipped
data/tokenizer.tiktoken.
"""

import base64
import json
import random

import pytest
import regex
import tiktoken.load

from minikd.tokenizer import (
    DEFAULT_PATH,
    SPECIAL_TOKENS,
    SPLIT_PATTERN,
    Tokenizer,
    main,
    train_bpe,
)

# Strings that break naive tokenizers: emoji (with ZWJ and skin tones), CJK,
# combining marks, control characters, odd whitespace, and the special literals.
NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "hello world",
    "What is 123 + 45?",
    "   leading and trailing   ",
    "tabs\tand\nnewlines\r\n\r\n\n",
    "\n\n\n   \t  \x0b\x0c",
    "\x1c\x1d\x1e\x1f\x85\xa0\u2028\u2029\u3000",
    "don't won't I'll we've they're she'd I'm IT'S",
    "1234567890 0.5 -3 1e10 ١٢٣ ½ ²",
    "emoji 👍🏽 family 👨‍👩‍👧‍👦 flag 🇰🇷 🤖",
    "你好，世界。日本語のテキスト 한국어 텍스트",
    "e\u0301 a\u0308\u0308 Z\u0351\u0352\u0353 combining",
    "Ελληνικά Кириллица עברית العربية",
    "<|pad|><|prompt|><|response|><|end|>",
    "please stop <|end|> now",
    "<|end|",
    "<|<|end|>|>",
    "x" * 200,
    "🙂" * 50,
    "mixed👍123abc\u0301\t<|prompt|>   \n",
]


def make_corpus(n: int = 400, seed: int = 0) -> str:
    """A small corpus like the prompt world: arithmetic questions and short sentences."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        lines.append(f"What is {a} + {b}?")
        lines.append(f"The answer is {a + b}.")
        lines.append(rng.choice([
            "Reverse the word: distillation",
            "Sort these letters: d c b a",
            "The teacher writes the answer and the student learns it.",
            "Count the vowels in banana.",
        ]))
    lines.append("Unicode too: 你好 👍🏽 é")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    """A tokenizer trained in the test itself, in a fraction of a second."""
    return Tokenizer.train(make_corpus(), vocab_size=350)


@pytest.fixture
def byte_tok() -> Tokenizer:
    """No merges at all: token id == byte value, so ids can be worked out by hand."""
    return Tokenizer({bytes([b]): b for b in range(256)})


def reference_encode(text: str, ranks: dict[bytes, int], pattern: str) -> list[int]:
    """Slow, obvious BPE encoding: pre-split with the regex, then inside each
    chunk repeatedly merge the adjacent pair whose concatenation has the
    lowest rank, until no adjacent pair is a token."""
    ids = []
    for chunk in regex.findall(pattern, text):
        parts = [bytes([b]) for b in chunk.encode("utf-8")]
        while len(parts) > 1:
            candidates = [
                (ranks[parts[i] + parts[i + 1]], i)
                for i in range(len(parts) - 1)
                if parts[i] + parts[i + 1] in ranks
            ]
            if not candidates:
                break
            _, i = min(candidates)  # lowest rank; on a tie the leftmost pair
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        ids.extend(ranks[p] for p in parts)
    return ids


# --- the trainer -------------------------------------------------------------


def test_train_bpe_hand_example():
    # chunks: "ab", " ab", " ab", " cd"; pair counts: (a,b)=3, (" ",a)=2, (" ",c)=1, (c,d)=1
    ranks = train_bpe("ab ab ab cd", vocab_size=258)
    assert len(ranks) == 258
    assert ranks[b"ab"] == 256  # first merge: the most frequent pair
    # after it: (" ",ab)=2, (" ",c)=1, (c,d)=1
    assert ranks[b" ab"] == 257
    t = Tokenizer(ranks)
    assert t.encode("ab ab cd") == [256, 257, 32, 99, 100]
    assert t.vocab_size == 262


def test_train_bpe_ties_do_not_depend_on_corpus_order():
    # every pair is seen once; the tie goes to the largest pair in byte order: (c, d)
    assert train_bpe("ab cd", 257)[b"cd"] == 256
    assert train_bpe("cd ab", 257)[b"cd"] == 256


def test_train_bpe_ranks_are_bytes_then_merges(tok):
    ranks = tok.ranks
    assert len(ranks) == 350
    assert sorted(ranks.values()) == list(range(350))
    assert all(ranks[bytes([b])] == b for b in range(256))
    by_rank = sorted(ranks, key=ranks.get)
    for token in by_rank[256:]:
        # every merged token is two earlier tokens glued together
        assert any(
            token[:k] in ranks and token[k:] in ranks and max(ranks[token[:k]], ranks[token[k:]]) < ranks[token]
            for k in range(1, len(token))
        ), token


def test_train_bpe_stops_when_pairs_run_out():
    assert len(train_bpe("aaaa", 1000)) == 258  # "aa", then "aaaa"
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe("abc", 100)


def test_digits_are_split_one_at_a_time(tok):
    assert regex.findall(SPLIT_PATTERN, "What is 123 + 45?") == [
        "What", " is", " ", "1", "2", "3", " +", " ", "4", "5", "?",
    ]
    # so no learned token holds more than one digit
    digit_tokens = [t for t in tok.ranks if any(chr(c).isdigit() for c in t if c < 128)]
    assert all(sum(chr(c).isdigit() for c in t) == 1 for t in digit_tokens)


def test_trainer_is_fast_on_a_larger_corpus():
    import time

    text = make_corpus(4000, seed=1)  # ~200 KB
    t0 = time.perf_counter()
    ranks = train_bpe(text, 600)
    assert time.perf_counter() - t0 < 10  # typically well under a second
    assert len(ranks) <= 600


# --- tiktoken agrees with the obvious algorithm --------------------------------


@pytest.mark.parametrize("text", NASTY)
def test_round_trip(tok, text):
    assert tok.decode(tok.encode(text)) == text


def _random_strings(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = list("abcdeABC xyz  \n\t0123456789'.,+-=?!<|>_") + list("é你好👍🏽\u0301\x00\u3000")
    pieces = alphabet + ["<|end|>", "'s", "'ll", " the", "123", "\r\n"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(n)]


def test_tiktoken_matches_reference_encoder(tok):
    texts = NASTY + make_corpus(50, seed=7).split("\n") + _random_strings(300, seed=3)
    for text in texts:
        assert tok.encode(text) == reference_encode(text, tok.ranks, tok.pattern), text
        assert tok.decode(tok.encode(text)) == text


# --- special tokens --------------------------------------------------------------


def test_special_ids_follow_the_ranks(tok):
    n = len(tok.ranks)
    assert [tok.pad_id, tok.prompt_id, tok.response_id, tok.end_id] == [n, n + 1, n + 2, n + 3]
    assert tok.vocab_size == n + len(SPECIAL_TOKENS)
    for i, literal in enumerate(SPECIAL_TOKENS):
        assert tok.decode([n + i]) == literal


@pytest.mark.parametrize("literal", SPECIAL_TOKENS)
def test_special_literal_in_text_is_plain_text(tok, literal):
    text = f"ignore this {literal} and go on"
    ids = tok.encode(text)
    assert all(i < len(tok.ranks) for i in ids)  # no special id appears
    assert tok.decode(ids) == text
    # tiktoken's plain `encode` would refuse the same text
    with pytest.raises(ValueError, match="disallowed special token"):
        tok.enc.encode(text)


def test_injected_end_does_not_end_the_response(tok):
    ids, mask = tok.render("say <|end|> please", "ok <|end|> done")
    assert ids.count(tok.end_id) == 1 and ids[-1] == tok.end_id
    assert ids.count(tok.prompt_id) == 1 and ids.count(tok.response_id) == 1
    assert tok.decode(ids) == "<|prompt|>say <|end|> please<|response|>ok <|end|> done<|end|>"


def test_decode_rejects_unknown_ids(tok):
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([tok.vocab_size])
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([-1])


def test_encode_rejects_non_strings(tok):
    with pytest.raises(TypeError, match="str"):
        tok.encode(b"bytes")


# --- the template and its mask (worked out by hand) ---------------------------------


def test_render_by_hand_bytes(byte_tok):
    # 256 ranks -> pad 256, prompt 257, response 258, end 259; "1" = 49, "+" = 43, "2" = 50
    ids, mask = byte_tok.render("1+1", "2")
    assert ids == [257, 49, 43, 49, 258, 50, 259]
    assert mask == [0, 0, 0, 0, 0, 1, 1]
    assert byte_tok.render_prompt("1+1") == [257, 49, 43, 49, 258]


def test_render_by_hand_merges():
    t = Tokenizer(train_bpe("ab ab ab cd", 258))  # "ab" = 256, " ab" = 257; specials 258..261
    ids, mask = t.render("ab", " ab cd")
    assert ids == [259, 256, 260, 257, 32, 99, 100, 261]
    assert mask == [0, 0, 0, 1, 1, 1, 1, 1]


def test_render_mask_layout(tok):
    prompt, response = "What is 12 + 30?", "42"
    ids, mask = tok.render(prompt, response)
    p, r = tok.encode(prompt), tok.encode(response)
    assert len(ids) == len(mask) == len(p) + len(r) + 3
    assert ids == [tok.prompt_id, *p, tok.response_id, *r, tok.end_id]
    assert mask == [0] * (len(p) + 2) + [1] * (len(r) + 1)
    # mask is 1 exactly on the response and the end token
    assert [i for i, m in zip(ids, mask) if m] == r + [tok.end_id]
    # generation starts where the prompt rendering ends
    assert ids[: len(p) + 2] == tok.render_prompt(prompt)


def test_render_empty_response_still_learns_to_stop(byte_tok):
    ids, mask = byte_tok.render("", "")
    assert ids == [257, 258, 259] and mask == [0, 0, 1]


def test_draw_mask_by_hand(byte_tok):
    ids, mask = byte_tok.render("1+1", "2")
    drawing = byte_tok.draw_mask(ids, mask)
    assert drawing.split("\n") == [
        "<|prompt|> '1' '+' '1' <|response|> '2' <|end|>",
        " " * 36 + "^^^ ^^^^^^^",
        "^ = loss is computed here (2 of 7 tokens)",
    ]


def test_draw_mask_wraps_and_stays_aligned(tok):
    ids, mask = tok.render("What is 123 + 456? " * 6, "579 \U0001f44d ok\n" * 4)
    lines = tok.draw_mask(ids, mask, width=40).split("\n")[:-1]  # drop the legend
    labels = [tok.token_label(i) for i in ids]
    k, read_back = 0, []  # k: the next label to find
    for token_row, caret_row in zip(lines[::2], lines[1::2]):
        assert len(token_row) <= 40 or token_row in labels  # only one over-long label may overflow
        caret_row = caret_row.ljust(len(token_row))
        pos = 0
        while k < len(labels) and token_row.startswith(labels[k], pos):
            under = caret_row[pos : pos + len(labels[k])]
            assert under in ("^" * len(under), " " * len(under))  # a token is all in or all out
            read_back.append(int(under[0] == "^"))
            pos, k = pos + len(labels[k]) + 1, k + 1
        assert pos >= len(token_row)  # the row held nothing but labels
    assert len(lines) > 2 and read_back == mask


def test_draw_mask_rejects_bad_input(tok):
    with pytest.raises(ValueError, match="length"):
        tok.draw_mask([1, 2, 3], [0, 1])
    with pytest.raises(ValueError, match="0 or 1"):
        tok.draw_mask([1, 2], [0, 2])


def test_token_label_shows_partial_utf8_as_bytes(byte_tok):
    e_acute = "é".encode()  # two bytes, each its own token in the byte tokenizer
    assert [byte_tok.token_label(b) for b in e_acute] == [ascii(e_acute[:1]), ascii(e_acute[1:])]
    assert byte_tok.token_label(10) == "'\\n'"


# --- fingerprint and files ---------------------------------------------------------


def test_fingerprint(tok):
    same = Tokenizer(dict(tok.ranks), tok.pattern)
    assert same.fingerprint == tok.fingerprint
    other_pattern = Tokenizer(tok.ranks, tok.pattern.replace(r"\p{N}", r"\p{N}{1,3}"))
    assert other_pattern.fingerprint != tok.fingerprint
    fewer = Tokenizer({t: r for t, r in tok.ranks.items() if r < 349})
    assert fewer.fingerprint != tok.fingerprint


def test_save_load_round_trip(tok, tmp_path, monkeypatch):
    path = tmp_path / "tok.tiktoken"
    tok.save(path, corpus=["somewhere.jsonl"])
    loaded = Tokenizer.load(path)
    assert loaded.ranks == tok.ranks and loaded.pattern == tok.pattern
    assert loaded.fingerprint == tok.fingerprint
    assert loaded.encode("What is 123 + 45?") == tok.encode("What is 123 + 45?")
    info = json.loads((tmp_path / "tok.json").read_text())
    assert info["special_tokens"] == SPECIAL_TOKENS and info["corpus"] == ["somewhere.jsonl"]
    assert info["n_ranks"] == 350 and info["vocab_size"] == 354
    # the file is tiktoken's own format: its loader reads it back unchanged
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # read directly, write no cache
    assert tiktoken.load.load_tiktoken_bpe(str(path)) == tok.ranks
    first = path.read_text().splitlines()[0]
    assert first == f"{base64.b64encode(bytes([0])).decode()} 0"


def _write_bad(tmp_path, tok, lines_edit):
    path = tmp_path / "bad.tiktoken"
    tok.save(path)
    lines = path.read_text().splitlines()
    lines_edit(lines)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda ls: ls.__setitem__(2, "not-a-valid-line"), r"bad\.tiktoken:3: expected '<base64 token> <rank>'"),
        (lambda ls: ls.__setitem__(2, "QQ== x"), r"bad\.tiktoken:3: expected"),
        (lambda ls: ls.__setitem__(2, "@@@ 2"), r"bad\.tiktoken:3: expected"),
        (lambda ls: ls.__setitem__(2, ls[1].split()[0] + " 2"), r"bad\.tiktoken:3: token .* appears twice"),
        (lambda ls: ls.__setitem__(2, ls[2].split()[0] + " 9999"), r"ranks must be exactly"),
    ],
)
def test_load_bad_file_names_file_and_line(tok, tmp_path, edit, message):
    path = _write_bad(tmp_path, tok, edit)
    with pytest.raises(ValueError, match=message):
        Tokenizer.load(path)


def test_load_missing_files(tok, tmp_path):
    with pytest.raises(FileNotFoundError, match="--train"):
        Tokenizer.load(tmp_path / "nope.tiktoken")
    path = tmp_path / "t.tiktoken"
    tok.save(path)
    (tmp_path / "t.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"t\.json"):
        Tokenizer.load(path)


def test_load_detects_mismatched_sidecar(tok, tmp_path):
    path = tmp_path / "t.tiktoken"
    tok.save(path)
    info = json.loads((tmp_path / "t.json").read_text())
    info["pattern"] = r"\S+|\s+"
    (tmp_path / "t.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="fingerprint"):
        Tokenizer.load(path)


# --- command line, shipped tokenizer, lesson -----------------------------------------


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "--train" in capsys.readouterr().out


def test_cli_train(tmp_path, capsys):
    corpus = tmp_path / "c.jsonl"
    rows = [{"prompt": f"What is {i} + {i}?", "completion": str(2 * i)} for i in range(300)]
    rows.append({"prompt": "no completion here"})
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "tok.tiktoken"
    main(["--train", "--vocab-size", "270", "--corpus", str(corpus), "--out", str(out)])
    loaded = Tokenizer.load(out)
    assert len(loaded.ranks) == 270
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["corpus"] == [str(corpus)]
    assert "What is 123 + 45?" in capsys.readouterr().out


def test_cli_train_bad_jsonl(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"prompt": "ok"}\n{oops\n')
    with pytest.raises(ValueError, match=r"c\.jsonl:2: invalid JSON"):
        main(["--train", "--corpus", str(corpus), "--out", str(tmp_path / "t.tiktoken")])


def test_shipped_tokenizer():
    assert DEFAULT_PATH.exists(), "data/tokenizer.tiktoken is shipped (python -m minikd.tokenizer --train)"
    t = Tokenizer.default()
    assert Tokenizer.default() is t  # cached
    assert 256 < len(t.ranks) <= 2048
    for text in NASTY:
        assert t.decode(t.encode(text)) == text
    assert t.encode("476") == [t.ranks[b"4"], t.ranks[b"7"], t.ranks[b"6"]]


def test_shipped_tokenizer_matches_its_recorded_corpus():
    """Retrain from the corpus recorded in data/tokenizer.json: the same ranks come out.
    If this fails, the prompt data changed: run `python -m minikd.tokenizer --train`."""
    from minikd.tokenizer import ROOT, corpus_from_jsonl

    info = json.loads(DEFAULT_PATH.with_suffix(".json").read_text())
    assert info["corpus"] == ["data/train.jsonl", "data/unlabelled.jsonl"]
    text = corpus_from_jsonl([ROOT / f for f in info["corpus"]])
    assert len(text) == info["corpus_chars"]
    retrained = Tokenizer.train(text, info["requested_ranks"])
    assert retrained.fingerprint == Tokenizer.default().fingerprint == info["fingerprint"]


def test_lesson_runs_fast(tmp_path):
    from lesson_checks import run_lesson  # the session's one notebook run of lesson 1

    out = run_lesson("l01_tokenizer", tmp_path).text
    assert "loss is computed here" in out
    assert "Check yourself" in out
