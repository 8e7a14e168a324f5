"""Byte-level BPE, trained here, run by tiktoken; plus the prompt/response template.

Three things live in this file, in the order a reader needs them:

1. ``train_bpe``: a readable byte-level BPE trainer. The text is cut into
   chunks by a regex (words, single digits, punctuation, whitespace), and then
   the most frequent adjacent pair of tokens is merged, again and again, until
   the vocabulary has the requested size. The result is a ``ranks`` table:
   token bytes -> rank, where a lower rank means "merged earlier".
2. ``Tokenizer``: hands those ranks to ``tiktoken.Encoding``, which does all
   real encoding and decoding fast. tiktoken's hosted encodings are never
   downloaded: minikd ships its own ranks in ``data/tokenizer.tiktoken``
   (tiktoken's own file format: base64 token, a space, the rank; one per line).
3. The template: ``render(prompt, response) -> (ids, mask)``. The mask is 1
   exactly where the loss is computed -- the response tokens and the token
   that ends the response -- and ``draw_mask`` prints it under the tokens:

       [prompt tokens][teacher answer tokens]
                      ^^^^^^^^^^^^^^^^^^^^^^^
                      loss is computed here

Special tokens get the ids right after the ranks. User text never produces
them: a prompt that *contains* the text "<|end|>" is encoded as ordinary
characters (``encode_ordinary``), so a user cannot end the response early.

A second tokenizer ships beside the first, for a student that does not share the teacher's
(lesson 15): the same trainer on the same corpus, with another split rule (a word does not take the
space before it) and another merge count (16 merges), in data/tokenizer2.tiktoken. Its vocabulary,
its ids and often its token boundaries differ; ``fingerprint`` tells the two apart, never the size.

Run ``python -m minikd.tokenizer --help``; ``--train`` rebuilds the shipped
tokenizer from data/train.jsonl and data/unlabelled.jsonl (``--train --second``: the second one).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import hashlib
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import regex  # tiktoken depends on it; unlike `re` it knows \p{L} (any letter) and \p{N} (any digit)
import tiktoken

from minikd.runtime import atomic_write_text

# The template's special tokens. Their ids are len(ranks) + index in this list.
SPECIAL_TOKENS = ["<|pad|>", "<|prompt|>", "<|response|>", "<|end|>"]

# How text is cut into chunks before BPE. Merges never cross a chunk boundary,
# so the pattern decides what a token *can* be. It is GPT-2's pattern with one
# change: a digit is always a chunk of its own (\p{N}, not GPT's \p{N}{1,3} or
# \p{N}+). Then BPE cannot learn tokens like "476", every number is spelled out
# digit by digit with 10 digit tokens, and a tiny model can learn arithmetic
# column by column instead of over hundreds of unrelated number tokens.
_SPLIT_PARTS = [
    r"'(?:[sdmt]|ll|ve|re)",  # English contractions: 's 'd 'm 't 'll 've 're
    r" ?\p{L}+",  # a word, with the space before it: " answer"
    r"\p{N}",  # ONE digit: "476" -> "4", "7", "6"
    r" ?[^\s\p{L}\p{N}]+",  # punctuation / symbols, with the space before: " +", "?"
    r"\s+(?!\S)",  # a whitespace run, leaving its last space for the next word
    r"\s+",  # any other whitespace (e.g. the space before a digit)
]
SPLIT_PATTERN = "|".join(_SPLIT_PARTS)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / "data" / "tokenizer.tiktoken"
DEFAULT_CORPUS = [ROOT / "data" / "train.jsonl", ROOT / "data" / "unlabelled.jsonl"]
DEFAULT_VOCAB_SIZE = 512  # number of ranks: 256 bytes + 256 merges (specials come on top)

# The second tokenizer (lesson 15's student): a word never takes the space before it (" Sum" is " ", "Sum"),
# a digit is still one chunk, and only the 16 most frequent merges are kept ("Sorted" stays "Sort", "e", "d").
SECOND_PATTERN = "|".join([r"\p{L}+", r"\p{N}", r"[^\s\p{L}\p{N}]+", r"\s+"])
SECOND_PATH = ROOT / "data" / "tokenizer2.tiktoken"
SECOND_VOCAB_SIZE = 256 + 16


# ---------------------------------------------------------------------------
# 1. Training: count chunks once, then merge the most frequent pair, repeatedly
# ---------------------------------------------------------------------------


def _merge(word: tuple[bytes, ...], pair: tuple[bytes, bytes]) -> tuple[bytes, ...]:
    """Replace every occurrence of `pair` in `word` (left to right) by one token."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def train_bpe(text: str, vocab_size: int, pattern: str = SPLIT_PATTERN) -> dict[bytes, int]:
    """Learn byte-level BPE ranks from `text`: 256 single bytes, then merges.

    Returns {token bytes: rank} with ranks 0..vocab_size-1 (fewer if the text
    runs out of pairs). Rank b is the single byte b, so any string can be
    encoded; rank 256 is the first merge, 257 the second, and so on.
    """
    if vocab_size < 256:
        raise ValueError(f"vocab_size must be >= 256 (the 256 single bytes), got {vocab_size}")
    # Step 1: pre-split and count. A corpus has few *distinct* chunks (" the",
    # " answer", "7"...), so we merge over unique chunks weighted by frequency.
    chunk_counts = Counter(regex.findall(pattern, text))
    words = [tuple(bytes([b]) for b in chunk.encode("utf-8")) for chunk in chunk_counts]
    freqs = list(chunk_counts.values())

    # Step 2: count every adjacent pair once, and remember which words hold it.
    pair_counts: Counter[tuple[bytes, bytes]] = Counter()
    where: defaultdict[tuple[bytes, bytes], set[int]] = defaultdict(set)
    for i, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freqs[i]
            where[pair].add(i)

    ranks = {bytes([b]): b for b in range(256)}
    while len(ranks) < vocab_size and pair_counts:
        # Step 3: the most frequent pair wins (ties go to the larger bytes, so
        # the result does not depend on the order of the corpus).
        best = max(pair_counts, key=lambda p: (pair_counts[p], p))
        new_token = best[0] + best[1]
        if new_token not in ranks:  # the same bytes may already exist via another pair
            ranks[new_token] = len(ranks)
        # Step 4: merge it inside the words that hold it (and update their pair counts).
        _merge_everywhere(best, words, freqs, pair_counts, where)
        pair_counts = +pair_counts  # drop pairs whose count fell to zero
    return ranks


def _merge_everywhere(best, words: list, freqs: list, pair_counts: Counter, where: defaultdict) -> None:
    """Merge the pair `best` in every word that holds it, and update the pair counts of just those words:
    take their old pairs out, put the new ones in (a full recount after every merge would be far slower)."""
    for i in where.pop(best):
        old = words[i]
        new = _merge(old, best)
        if new == old:  # stale entry: an earlier merge already consumed the pair here
            continue
        for pair in zip(old, old[1:]):
            pair_counts[pair] -= freqs[i]
        for pair in zip(new, new[1:]):
            pair_counts[pair] += freqs[i]
            where[pair].add(i)
        words[i] = new


# ---------------------------------------------------------------------------
# 2. The tokenizer: ranks + pattern + specials, run by tiktoken
# ---------------------------------------------------------------------------


def _ranks_to_text(ranks: dict[bytes, int]) -> str:
    """tiktoken's BPE file format: `base64(token) rank`, one token per line, by rank."""
    return "".join(
        f"{base64.b64encode(tok).decode('ascii')} {rank}\n"
        for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1])
    )


def _check_ranks(ranks: dict[bytes, int], where: str) -> None:
    """Ranks must be 0..n-1, one token each, and contain all 256 single bytes."""
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise ValueError(f"{where}: ranks must be exactly 0..{len(ranks) - 1}, each used once")
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise ValueError(f"{where}: byte-level BPE needs all 256 single bytes; missing byte {missing[0]}")


class Tokenizer:
    """Byte-level BPE with the prompt/response template. Encoding runs in tiktoken."""

    def __init__(self, ranks: dict[bytes, int], pattern: str = SPLIT_PATTERN, name: str = ""):
        _check_ranks(ranks, "Tokenizer")
        self.ranks = dict(ranks)
        self.pattern = pattern
        self.name = name  # the file it was loaded from ("" when built in memory): for messages only
        n = len(self.ranks)
        self.special_ids = {tok: n + i for i, tok in enumerate(SPECIAL_TOKENS)}
        self.enc = tiktoken.Encoding(
            name=f"minikd-bpe-{n}",
            pat_str=pattern,
            mergeable_ranks=self.ranks,
            special_tokens=self.special_ids,
        )
        self.pad_id, self.prompt_id, self.response_id, self.end_id = (
            self.special_ids[t] for t in SPECIAL_TOKENS
        )
        self.vocab_size = n + len(SPECIAL_TOKENS)  # the model's embedding rows
        # Checkpoints and stored teacher logits record this: ids mean nothing
        # without the exact ranks, split pattern and specials that made them.
        spec = json.dumps({"pattern": pattern, "special_tokens": SPECIAL_TOKENS})
        digest = hashlib.sha256((_ranks_to_text(self.ranks) + spec).encode("utf-8"))
        self.fingerprint = digest.hexdigest()[:16]

    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str = SPLIT_PATTERN) -> "Tokenizer":
        """Train BPE ranks on `text` and wrap them (vocab_size counts ranks, not specials)."""
        return cls(train_bpe(text, vocab_size, pattern), pattern)

    def __repr__(self) -> str:
        name = f"{self.name!r}, " if self.name else ""
        return f"Tokenizer({name}vocab_size={self.vocab_size}, fingerprint={self.fingerprint!r})"

    def describe(self) -> str:
        """How error messages name a tokenizer: its file, fingerprint and size."""
        name = self.name or "a tokenizer built in memory"
        return f"{name} (fingerprint {self.fingerprint}, {self.vocab_size} tokens)"

    # -- encode / decode -----------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Ordinary text -> ids. A literal "<|end|>" in `text` stays plain text.

        tiktoken's `encode` would raise on such text (or, with allowed_special,
        turn it into the real special id); `encode_ordinary` never looks for
        specials, which is what user text needs.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        return self.enc.encode_ordinary(text)

    def decode(self, ids: list[int]) -> str:
        """ids -> text; special ids decode to their literal text ("<|end|>")."""
        for i in ids:
            if not 0 <= int(i) < self.vocab_size:
                raise ValueError(f"token id {i} out of range for vocab_size {self.vocab_size}")
        return self.enc.decode([int(i) for i in ids])

    def token_label(self, token_id: int) -> str:
        """One token as printable text: specials as-is, others like repr() (ASCII only).

        ascii() escapes newlines and non-ASCII characters, so every label has a
        known width and the mask drawn under it lines up. A token that is only
        part of a UTF-8 character is shown as its bytes: b'\\xe4\\xbd'.
        """
        if token_id >= len(self.ranks):  # a special token: show its literal text
            return self.decode([token_id])
        raw = self.enc.decode_single_token_bytes(token_id)
        try:
            return ascii(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return ascii(raw)

    # -- the prompt/response template ----------------------------------------

    def render(self, prompt: str, response: str) -> tuple[list[int], list[int]]:
        """(prompt, response) -> (ids, mask); mask is 1 where the loss is computed.

        ids:  <|prompt|> prompt... <|response|> response... <|end|>
        mask:     0        0...         0            1...       1
        The end token is in the mask: the student must learn *when to stop*.
        """
        p, r = self.encode(prompt), self.encode(response)
        ids = [self.prompt_id, *p, self.response_id, *r, self.end_id]
        mask = [0] * (len(p) + 2) + [1] * (len(r) + 1)
        return ids, mask

    def render_prompt(self, prompt: str) -> list[int]:
        """The ids a model sees before it writes a response: generation starts after them."""
        return [self.prompt_id, *self.encode(prompt), self.response_id]

    def draw_mask(self, ids: list[int], mask: list[int], width: int = 100) -> str:
        """Print the tokens on one line and ^^^ under those with mask == 1.

        Long sequences wrap every `width` characters; each token row gets its
        own caret row, so every ^ stays under its token.
        """
        if len(ids) != len(mask):
            raise ValueError(f"ids and mask differ in length: {len(ids)} != {len(mask)}")
        if any(m not in (0, 1) for m in mask):
            raise ValueError("mask values must be 0 or 1")
        rows, tokens, carets = [], [], []
        used = 0
        for token_id, m in zip(ids, mask):
            label = self.token_label(token_id)
            if tokens and used + len(label) > width:
                rows += [" ".join(tokens).rstrip(), " ".join(carets).rstrip()]
                tokens, carets, used = [], [], 0
            tokens.append(label)
            carets.append(("^" if m else " ") * len(label))
            used += len(label) + 1
        if tokens:
            rows += [" ".join(tokens).rstrip(), " ".join(carets).rstrip()]
        rows.append(f"^ = loss is computed here ({sum(mask)} of {len(mask)} tokens)")
        return "\n".join(rows)

    # -- files ---------------------------------------------------------------

    def save(self, path: str | os.PathLike, **meta) -> None:
        """Write the ranks to `path` (tiktoken format) and the rest to path.with_suffix('.json').

        Extra keyword arguments (e.g. corpus=[...]) are recorded in the JSON.
        Both files are written to a temporary name first and then renamed.
        """
        path = Path(path)
        info = {
            "pattern": self.pattern,
            "special_tokens": SPECIAL_TOKENS,
            "n_ranks": len(self.ranks),
            "vocab_size": self.vocab_size,
            "fingerprint": self.fingerprint,
            **meta,
        }
        atomic_write_text(path, _ranks_to_text(self.ranks))
        atomic_write_text(path.with_suffix(".json"), json.dumps(info, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        """Read a tokenizer written by `save`. A malformed line is an error naming file and line."""
        path = Path(path)
        meta_path = path.with_suffix(".json")
        if not path.exists():
            raise FileNotFoundError(f"{path}: tokenizer file not found (python -m minikd.tokenizer --train writes it)")
        if not meta_path.exists():
            raise FileNotFoundError(f"{meta_path}: missing (it holds the split pattern and special tokens)")
        ranks: dict[bytes, int] = {}
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                parts = line.split()
                try:
                    if len(parts) != 2:
                        raise ValueError
                    token, rank = base64.b64decode(parts[0], validate=True), int(parts[1])
                except (ValueError, binascii.Error):
                    raise ValueError(
                        f"{path}:{lineno}: expected '<base64 token> <rank>', got {line.rstrip()!r}"
                    ) from None
                if token in ranks:
                    raise ValueError(f"{path}:{lineno}: token {token!r} appears twice")
                ranks[token] = rank
        _check_ranks(ranks, str(path))
        try:
            info = json.loads(meta_path.read_text(encoding="utf-8"))
            pattern = info["pattern"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{meta_path}: not a tokenizer description ({e})") from None
        if info.get("special_tokens", SPECIAL_TOKENS) != SPECIAL_TOKENS:
            raise ValueError(f"{meta_path}: special tokens {info['special_tokens']} != {SPECIAL_TOKENS}")
        tok = cls(ranks, pattern, name=_short(path))
        if "fingerprint" in info and info["fingerprint"] != tok.fingerprint:
            raise ValueError(
                f"{meta_path}: records fingerprint {info['fingerprint']} but {path.name} gives "
                f"{tok.fingerprint}: the two files do not belong together"
            )
        return tok

    @staticmethod
    def default() -> "Tokenizer":
        """The shipped tokenizer (data/tokenizer.tiktoken), loaded once and cached."""
        return _load_shipped(DEFAULT_PATH)

    @staticmethod
    def second() -> "Tokenizer":
        """The second shipped tokenizer (data/tokenizer2.tiktoken: another split rule, 16 merges), cached."""
        return _load_shipped(SECOND_PATH)


@functools.lru_cache(maxsize=2)
def _load_shipped(path: Path) -> Tokenizer:
    return Tokenizer.load(path)


def _short(path: Path) -> str:
    """A path relative to the repository when it is inside it ("data/tokenizer.tiktoken"), else as given."""
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def describe_fingerprint(fingerprint: str | None) -> str:
    """Name a tokenizer known only by its fingerprint (a checkpoint records nothing else): the shipped file
    it belongs to, when it is one of them."""
    for path in (DEFAULT_PATH, SECOND_PATH):
        meta = path.with_suffix(".json")
        if meta.exists() and json.loads(meta.read_text(encoding="utf-8")).get("fingerprint") == fingerprint:
            return _load_shipped(path).describe()
    return f"fingerprint {fingerprint} (not a shipped tokenizer)"


# ---------------------------------------------------------------------------
# 3. Command line: train the shipped tokenizer, or look at how text is encoded
# ---------------------------------------------------------------------------


def corpus_from_jsonl(paths: list[Path]) -> str:
    """All "prompt" and "completion" strings of some JSONL files, one per line."""
    texts = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
                for field in ("prompt", "completion"):
                    value = record.get(field) if isinstance(record, dict) else None
                    if isinstance(value, str):
                        texts.append(value)
    return "\n".join(texts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m minikd.tokenizer",
        description="Train minikd's byte-level BPE, or show how text is tokenized.",
    )
    parser.add_argument("--train", action="store_true", help="train on the corpus files and write --out")
    parser.add_argument("--second", action="store_true",
                        help=f"the second tokenizer (lesson 15): its split rule, {SECOND_VOCAB_SIZE} ranks, "
                        f"written to {_short(SECOND_PATH)} (unless --vocab-size / --out say otherwise)")
    parser.add_argument("--vocab-size", type=int, default=None,
                        help=f"number of ranks: 256 bytes + merges (default {DEFAULT_VOCAB_SIZE}; specials come on top)")
    parser.add_argument("--corpus", type=Path, nargs="+", default=DEFAULT_CORPUS,
                        help="JSONL files whose prompt/completion fields are the training text")
    parser.add_argument("--out", type=Path, default=None, help=f"where to write the ranks (+ .json); "
                        f"default {_short(DEFAULT_PATH)}")
    parser.add_argument("--encode", metavar="TEXT", help="print the tokens of TEXT")
    args = parser.parse_args(argv)
    pattern = SECOND_PATTERN if args.second else SPLIT_PATTERN
    args.vocab_size = args.vocab_size or (SECOND_VOCAB_SIZE if args.second else DEFAULT_VOCAB_SIZE)
    args.out = args.out or (SECOND_PATH if args.second else DEFAULT_PATH)

    if args.train:
        t0 = time.perf_counter()
        text = corpus_from_jsonl(args.corpus)
        tok = Tokenizer.train(text, args.vocab_size, pattern)
        seconds = time.perf_counter() - t0
        files = [_short(p) for p in args.corpus]
        tok.save(args.out, requested_ranks=args.vocab_size, corpus=files, corpus_chars=len(text))
        print(f"trained on {len(text):,} characters from {', '.join(files)} in {seconds:.1f} s")
        if len(tok.ranks) < args.vocab_size:
            print(f"the corpus ran out of pairs after {len(tok.ranks) - 256} merges: every word is one token "
                  f"and digits never merge, so {len(tok.ranks)} ranks instead of {args.vocab_size}")
        print(f"wrote {args.out} and {args.out.with_suffix('.json')}: {tok}")
    tok = Tokenizer.load(args.out)
    if not args.train:
        print(tok)
    for text in [args.encode] if args.encode is not None else ["What is 123 + 45?", "The answer is 168."]:
        ids = tok.encode(text)
        print(f"{text!r} -> {len(ids)} tokens {ids}")
        print("   " + " ".join(tok.token_label(i) for i in ids))


if __name__ == "__main__":
    sys.exit(main())
