# %% [markdown]
"""Lesson 15 — the teacher over HTTP: sequence-level KD needs only the teacher's text, so the teacher can be a server.

Sequence-level KD (Kim & Rush 2016) stores the teacher's answers as text, (s, u) pairs. Text is what a
teacher behind an API returns, so the labelling step can run against a server instead of a model in memory:
`minikd serve` puts the teacher behind an OpenAI-style completions API, and the client writes the same
JSONL file the local labelling job writes. Lesson 16 then trains a student with ANOTHER tokenizer from
that stored text, and asks what a token-level loss can still carry (ULD).

What to look at:
  1. the stored file of the teacher's greedy answers to the training prompts (the main job's, made once);
  2. the teacher served at a local URL (minikd serve's OpenAI-style completions API): a few prompts labelled
     through it give byte for byte the answers of the stored local file;
  3. the stored file stands alone: prompt, completion, source, decoding settings and the teacher's fingerprint
     per record (a file made before records carried the last two has them in its sidecar only).

Run:  python -m lessons.l15_teacher_over_http      (--fast: the quick profile's teacher, 4 prompts over HTTP)
"""

# %%
import time

from lessons import lesson_parser
from lessons.kit import get_profile, get_teacher, load_split, profile_dir, prompt_records, save_lesson, teacher_greedy
from minikd.data import read_jsonl, read_meta
from minikd.machinery.client import api_dataset
from minikd.machinery.serve import serve_in_background
from minikd.tokenizer import Tokenizer
from minikd.verdict import LOG, check

parser = lesson_parser(__doc__, "the quick profile's teacher, 4 prompts over HTTP")
parser.add_argument("--http-prompts", type=int, default=16, help="training prompts labelled over HTTP")
args = parser.parse_args()
profile = get_profile("quick" if args.fast else "default")
tok = Tokenizer.default()
n_claims, start = len(LOG), time.perf_counter()

# %% Step 1: the teacher's stored greedy answers to the training prompts (the main job's file, made once).
teacher, _ = get_teacher(profile, device=args.device, seed=0)
local = teacher_greedy(profile, teacher, tok, "train")
stored = {r["id"]: r for r in read_jsonl(local)}
print(f"Step 1: the stored file {local.name}: {len(stored)} teacher answers, made once by the main job")

# %% Step 2: serve the teacher, label the first n training prompts through its HTTP API (greedy, the stored
# file's max_new_tokens), and compare with the stored local answers byte for byte.
n = 4 if args.fast else args.http_prompts
settings = read_meta(local)["settings"]
records = prompt_records(load_split("train", profile, tok))[:n]
out = profile_dir(profile) / "l15_http_greedy.jsonl"
t0 = time.perf_counter()
with serve_in_background(teacher, tok) as server:
    print(f"\nStep 2: the teacher served at {server.url}/v1 (OpenAI-style completions); {n} training prompts "
          "labelled through it")
    api_dataset(server.url, records, out, max_new_tokens=settings["max_new_tokens"], temperature=0.0,
                overwrite=True)
seconds = time.perf_counter() - t0
http = list(read_jsonl(out))
same = [(r["completion"].encode(), r["ended"]) == (stored[r["id"]]["completion"].encode(), stored[r["id"]]["ended"])
        for r in http]
print(f"  {len(http)} answers in {seconds:.1f} s, e.g. {http[0]['prompt']!r} -> {http[0]['completion']!r}")
check("the answers labelled over HTTP are byte for byte the stored local ones", len(http) == n and all(same),
      f"{sum(same)} of {n} prompts: the same completion bytes and end flag as {local.name}", fast=args.fast)

# %% Step 3: the stored (s, u) file stands alone: a record's fields, and the sidecar's settings.
raw, meta = list(read_jsonl(local)), read_meta(local)
print(f"\nStep 3: the stored file {local.name}: {len(raw)} records; a record's fields: {sorted(raw[0])}")
print(f"  its sidecar: decoding {meta['settings']['method']}, max_new_tokens {meta['settings']['max_new_tokens']}, "
      f"teacher weights {meta['settings']['teacher']}, teacher tokenizer {meta['teacher_tokenizer']}")
print("  nothing in it needs the teacher again: a student of any tokenizer can train from it (lesson 16)")
save_lesson("l15_teacher_over_http", args, LOG[n_claims:], seconds=time.perf_counter() - start)

# %%
print("\nCheck yourself")
print("  1. A teacher behind an API returns text only. Which students can you still train from it (sequence-level")
print("     KD, word-level KD, ULD), and what would the API have to return for the others?")
print("  2. Why must labelling over HTTP use the same decoding settings as the stored file to match it byte for byte?")
