"""The minikd workbook: write the key function of every lesson yourself, and let pytest grade it.

Start here:

    cp lessons/workbook.py my_workbook.py       # your own copy (keep this file as it is)
    python -m lessons.check my_workbook.py      # which exercises pass, and a hint for the next one

Fill in the functions from the top, one at a time, re-running the check after each. Every function
below raises NotImplementedError until you replace its body. The docstrings say what to return and
which shapes go in and out; the `Hint:` line is what the checker prints when you are stuck. Read the
lesson first (`python -m lessons.l04_response_masking`, ...): each exercise is its key step.

Rules: plain Python and torch. You may use minikd's helpers that are NOT the thing being graded --
the Tokenizer's encode and ids, the GPT class and its KV cache, minikd.world.verify -- but not the
graded function itself (e.g. do not call minikd.losses.kd_loss inside ex15_kd_loss: that would grade
minikd, not you). The tests are in tests/exercises/. Stuck? The plain answer key,
tests/exercises/plain_solutions.py, solves every exercise in plain Python and torch, a few lines each
(tests/exercises/reference.py answers by calling minikd itself). `pytest tests/exercises --workbook
my_workbook.py` runs the same tests with pytest's full output.

IGNORE_INDEX = -100 marks a target position that carries no loss (F.cross_entropy's default).
"""

from __future__ import annotations

import math  # noqa: F401  (you may need these)
from collections import Counter  # noqa: F401

import numpy as np  # noqa: F401
import regex  # noqa: F401  (like `re`, but knows \p{N} = any digit)
import torch  # noqa: F401
import torch.nn.functional as F  # noqa: F401

IGNORE_INDEX = -100


def _todo(name: str):
    return NotImplementedError(f"{name}: not written yet -- read its docstring in the workbook, "
                               f"then run python -m lessons.check")


# ===================================================================================================
# Lesson 1 -- tokens, the template, the mask                  (python -m lessons.l01_tokenizer)
# ===================================================================================================


def ex01_render_with_mask(tok, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """Render one (prompt, response) pair with the chat template, and the loss mask under it.

        ids:  <|prompt|>  prompt ids...  <|response|>  response ids...  <|end|>
        mask:     0          0...             0            1...            1

    `tok` is a minikd Tokenizer: use tok.encode(text) and the ids tok.prompt_id, tok.response_id,
    tok.end_id. Return (ids, mask) as two lists of the same length.

    Hint: the mask is 1 exactly where the student is graded: the response tokens AND <|end|> (it must
    learn when to stop); <|response|> is template, so 0.
    """
    raise _todo("ex01_render_with_mask")


def ex02_encode_user_text(enc, text: str) -> list[int]:
    """Encode text a USER wrote, with a tiktoken.Encoding `enc` (e.g. tok.enc), into ordinary token ids.

    User text must never produce a special-token id: "<|end|>" typed into a prompt would otherwise end
    the response early (special-token injection). It must be encoded as the characters it is.

    Hint: tiktoken's enc.encode refuses such text, and encode(..., allowed_special="all") turns it into
    the real special id; tiktoken has a method that never looks for special tokens at all.
    """
    raise _todo("ex02_encode_user_text")


def ex03_number_chunks(numbers: list[int], pattern: str) -> set[str]:
    """The distinct chunks the pre-split regex `pattern` cuts the decimal numbers into.

    Before BPE merges anything, text is split by a regex; merges never cross a chunk boundary. With
    GPT's digit rule \\p{N}{1,3}, "12345" -> "123", "45", so 0..999 need 1000 different chunks; with
    minikd's one-digit rule they need 10 (lesson 1, check yourself question 2).

    Hint: regex.findall(pattern, str(n)) gives the chunks of one number; collect them in a set.
    """
    raise _todo("ex03_number_chunks")


def ex04_check_tokenizer(ckpt: dict, tok) -> None:
    """Refuse a checkpoint that was trained with another tokenizer: raise ValueError, else return None.

    A model only knows ids; what an id MEANS comes from the tokenizer's ranks, split pattern and special
    tokens. Two tokenizers with the same vocabulary size can still give the same text different ids, so
    the vocabulary size proves nothing. minikd records tok.fingerprint (a hash of all three) in every
    checkpoint under "tokenizer" (lesson 1, check yourself question 4). The error message must name
    both fingerprints, the checkpoint's and the tokenizer's.

    Hint: compare ckpt.get("tokenizer") with tok.fingerprint -- not vocabulary sizes. A checkpoint
    without a fingerprint cannot be trusted either.
    """
    raise _todo("ex04_check_tokenizer")


# ===================================================================================================
# Lesson 2 -- the GPT                                          (python -m lessons.l02_model)
# ===================================================================================================


def ex05_causal_mask(T: int) -> torch.Tensor:
    """The (T, T) bool causal mask: entry [i, j] is True when the query at position i may attend to key j.

    Hint: position i sees 0..i and never the future: a lower-triangular matrix (torch.tril), dtype bool.
    """
    raise _todo("ex05_causal_mask")


def ex06_count_params(config) -> int:
    """The number of parameters of minikd's GPT for a GPTConfig, counted by hand from the architecture.

    Read minikd/model.py: token embedding (V x C), position embedding (block_size x C); per block two
    LayerNorms (weight + bias each), attention qkv (C -> 3C, with bias) and proj (C -> C, with bias),
    MLP fc (C -> 4C) and proj (4C -> C), with biases; a final LayerNorm; the output layer lm_head.
    (Building GPT(config) and counting its tensors grades nothing: write the formula.)

    Hint: lm_head's weight IS the token embedding (tied weights): count it once. A Linear(a, b) with
    bias has a*b + b parameters; a LayerNorm(C) has 2C.
    """
    raise _todo("ex06_count_params")


# ===================================================================================================
# Lesson 3 -- the training loop                                (python -m lessons.l03_training_loop)
# ===================================================================================================


def ex07_lr_at(step: int, lr: float, warmup: int, steps: int, min_lr_ratio: float) -> float:
    """The learning rate at optimizer step `step` (counted from 0): linear warmup, then cosine decay.

    - step < warmup:  lr * (step + 1) / warmup  (so step 0 already trains);
    - after that:     progress p = (step - warmup) / (steps - warmup), capped at 1, and
                      lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + cos(pi * p))).

    Hint: the cosine term goes from 1 at p = 0 down to 0 at p = 1, so the rate ends at lr * min_lr_ratio.
    """
    raise _todo("ex07_lr_at")


def ex08_accumulated_loss(micro_logits: list[torch.Tensor], micro_targets: list[torch.Tensor]) -> torch.Tensor:
    """The loss of one optimizer step whose batch was split into micro-batches (gradient accumulation).

    micro_logits[i] is (B_i, T, V), micro_targets[i] is (B_i, T) with IGNORE_INDEX off the answer.
    Return a scalar equal to the mean cross-entropy per answer token of the WHOLE batch, as if it had
    never been split -- whatever the number of answer tokens in each micro-batch.

    Hint: add up each micro-batch's SUMMED loss (F.cross_entropy(..., ignore_index=-100,
    reduction="sum")) and divide once by the answer tokens of all micro-batches; a mean of micro-batch
    means is wrong when they hold different numbers of answer tokens.
    """
    raise _todo("ex08_accumulated_loss")


def ex09_batch_indices(n_examples: int, batch_size: int, seed: int, step: int) -> list[int]:
    """Which examples form batch number `step`: batch_size indices in [0, n_examples), drawn with replacement.

    For a run stopped at step 600 and resumed to end exactly like one that never stopped, batch `step`
    must depend on (seed, step) ONLY -- not on how many batches were drawn before in this process (lesson
    3, check yourself question 2). And different (seed, step) pairs must give different batches: a
    generator seeded with seed + step would give the run with seed 1 at step 0 the batch of the run with
    seed 0 at step 1.

    Hint: make a fresh torch.Generator for every call, seeded from both numbers together, e.g.
    int(np.random.SeedSequence([seed, step]).generate_state(1)[0]), then torch.randint(..., generator=g).
    """
    raise _todo("ex09_batch_indices")


# ===================================================================================================
# Lesson 4 -- response masking                                 (python -m lessons.l04_response_masking)
# ===================================================================================================


def ex10_collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Turn (ids, mask) pairs into a right-padded batch {"inputs": (B, T-1), "targets": (B, T-1)}, long.

        ids     [P] p1 p2 [R] a1 a2 [E]
        mask     0  0  0   0  1  1   1
        inputs  [P] p1 p2 [R] a1 a2        = ids[:-1]
        targets  -  -  -   a1 a2 [E]       = ids[1:] where mask[1:] == 1, else IGNORE_INDEX (-)

    T is the longest sequence; shorter rows are padded on the right: inputs with pad_id, targets with
    IGNORE_INDEX.

    Hint: the target at position t is ids[t + 1], so the mask moves with the targets: keep it where
    mask[t + 1] == 1. Padding must be IGNORE_INDEX in the targets, never pad_id.
    """
    raise _todo("ex10_collate")


def ex11_masked_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy -log p(target) over the answer tokens only. logits (B, T, V), targets (B, T) -> scalar.

    Positions whose target is IGNORE_INDEX (prompt, template, padding) do not count, and the mean is
    per answer token over the whole batch (not per sequence). A batch without answer tokens gives 0.0.

    Hint: select the answer positions first (keep = targets != IGNORE_INDEX; logits[keep] is (N, V)),
    then sum -log_softmax at the targets and divide by N, or 1 when N == 0 (0 / 0 would be nan).
    """
    raise _todo("ex11_masked_nll")


def ex12_answer_logprob(model, ids: list[int], mask: list[int]) -> float:
    """log p(u | s): the log-probability `model` gives the answer (end token included) after the prompt.

        log p(u | s) = sum over answer positions t of log p(ids[t] | ids[:t])

    Compute it with ONE forward pass: model(torch.tensor([ids[:-1]])) gives logits (1, T-1, V), and the
    logits at position t - 1 are the distribution of ids[t]. Return a float. It links two objectives:
    the masked SFT loss of lesson 4 is exactly -log p(u | s) / |u|, and -log p(u | s) on the teacher's
    answer u is what sequence-level KD minimises (Kim & Rush 2016).

    Hint: use F.log_softmax(logits, dim=-1), gather the log-prob of ids[1:], and add those where
    mask[1:] == 1 (run under torch.no_grad()).
    """
    raise _todo("ex12_answer_logprob")


# ===================================================================================================
# Lesson 5 -- train the teacher                                (python -m lessons.l05_train_teacher)
# ===================================================================================================


def ex13_accuracy(records: list[dict], outputs: list[tuple[str, bool]]) -> dict:
    """Verified accuracy of a model's answers, overall and per task family.

    records[i] has "task" and "prompt"; outputs[i] = (text the model wrote, ended) where ended says
    whether it wrote <|end|> before the token limit. Return
    {"acc": float, "acc_by_task": {task: float}}.

    Hint: right = ended and minikd.world.verify(record["prompt"], text). The verifier recomputes the
    truth from the prompt; never compare with record["answer"] (labels can be noisy), and an answer
    that did not end is wrong.
    """
    raise _todo("ex13_accuracy")


# ===================================================================================================
# Lesson 6 -- token-level (word-level) KD                      (python -m lessons.l06_token_kd)
# ===================================================================================================


def ex14_softmax_t(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / T) over the vocabulary (the last axis), in float32, any leading shape.

    T > 1 flattens the distribution and shows the teacher's 'dark knowledge' (which wrong answers it
    finds nearly right); T < 1 sharpens it.

    Hint: divide (not multiply) by T, softmax over dim=-1, and call .float() first.
    """
    raise _todo("ex14_softmax_t")


def ex15_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                 temperature: float, alpha: float) -> torch.Tensor:
    """Word-level KD (Hinton et al. 2015), averaged over the answer tokens. Logits (B, T, V), targets (B, T).

        loss = (1 - alpha) * CE(student, targets) + alpha * T^2 * KL(p_teacher^T || p_student^T)

    with p^T = softmax(logits / T) on BOTH sides and the forward KL
    KL(p_t || p_s) = sum_v p_t(v) * (log p_t(v) - log p_s(v)). Only positions with a target count.
    The teacher is a fixed target: no gradient may flow into its logits.

    Hint: select answer rows first (keep = targets != -100); teacher_logits.detach(); use log_softmax
    for both log-probs; the T^2 keeps the soft term's gradient about the same size across temperatures.
    """
    raise _todo("ex15_kd_loss")


def ex16_word_level_target(teacher_logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """The word-level KD target of one sequence: the teacher's distribution at each answer position.

    teacher_logits (T, V) for the sequence's inputs, targets (T,) with IGNORE_INDEX off the answer.
    Return (n_answer, V): softmax(z / T) at every position whose target is not IGNORE_INDEX.
    This is lesson 6's first Check-yourself question: a word-level target is a whole distribution per
    position (a sequence-level target is one token id per position: lesson 8).

    Hint: teacher_logits[targets != IGNORE_INDEX] selects the rows; keep every probability, not the argmax.
    """
    raise _todo("ex16_word_level_target")


# ===================================================================================================
# Lesson 7 -- what token-level KD costs                        (python -m lessons.l07_token_kd_cost)
# ===================================================================================================


def ex17_storage_bytes(n_answer_tokens: int, vocab_size: int, k: int, text: str) -> dict[str, int]:
    """What each kind of teacher signal costs on disk for one answer of n_answer_tokens positions.

    Return {"full_fp32": ..., "full_fp16": ..., "topk": ..., "text": ...} in bytes:
      full logits: one number per vocabulary token per position, 4 bytes (fp32) or 2 bytes (fp16);
      top-k:       k (token id, fp16 log-prob) pairs per position; an id takes 2 bytes (int16) when
                   vocab_size <= 32767, else 4 bytes (int32);
      text:        what sequence-level KD stores: the answer text itself.

    Hint: text on disk is UTF-8: len(text.encode("utf-8")), not len(text).
    """
    raise _todo("ex17_storage_bytes")


# ===================================================================================================
# Lesson 8 -- sequence-level KD                                (python -m lessons.l08_sequence_kd)
# ===================================================================================================


def ex18_sequence_level_target(ids: list[int], mask: list[int]) -> list[int]:
    """The sequence-level KD target of one rendered example: the answer's token ids, <|end|> included.

    The other half of the first question (what does the student see?): sequence-level KD does not match distributions; its target is
    one token sequence the teacher wrote. Return a list of int.

    Hint: the mask from ex01 is 1 exactly on the answer tokens and the end token.
    """
    raise _todo("ex18_sequence_level_target")


def ex19_greedy_decode(model, prompt_ids: list[int], max_new_tokens: int, end_id: int) -> tuple[list[int], bool]:
    """u = model(s): greedy decoding with the KV cache. Returns (tokens written, ended).

    1. cache = model.new_cache(1); logits = model(torch.tensor([prompt_ids]), cache)  reads the prompt;
    2. the next token is logits[0, -1].argmax(); stop if it is end_id (ended=True, end_id NOT in tokens);
    3. otherwise append it and read ONLY it: logits = model(torch.tensor([[token]]), cache).
    At most max_new_tokens tokens are written, the end token included; ended=False if the limit came
    first. Run under torch.no_grad().

    Hint: the cache already holds every earlier position and continues the positions by itself; feed
    each new token exactly once -- never the prompt again, never a token twice.
    """
    raise _todo("ex19_greedy_decode")


def ex20_build_su_dataset(records: list[dict], teacher_fn) -> list[dict]:
    """Steps 2-3 of Kim & Rush's (2016) offline pipeline: u = teacher(s) for every prompt s, stored as (s, u) records.

    records are dicts with at least "prompt" (and maybe a ground-truth "completion", "id", "answer"...).
    teacher_fn(prompt) -> (text, ended). Return NEW dicts, one per record in order, with every field of
    the record kept, and "completion" = the teacher's text, "ended" = ended, "source" = "teacher".

    Hint: {**record, "completion": text, ...}: the teacher's text replaces the ground truth; ask the
    teacher once per prompt.
    """
    raise _todo("ex20_build_su_dataset")


def ex21_seq_kd_step(student, optimizer, tok, records: list[dict]) -> float:
    """One training step of offline sequence-level KD: SFT on stored (prompt, completion) records.

    Render every record (tok.render(prompt, completion) or your ex01), collate (your ex10) with
    tok.pad_id, compute the masked mean NLL of student(inputs) (your ex11), then
    optimizer.zero_grad(); loss.backward(); optimizer.step(). Return the loss (a float, before the update).
    No teacher takes part: the stored text is the whole signal (why offline sequence-level KD needs no teacher logits).

    Hint: you already wrote every piece: ex01 (or tok.render) -> ex10 -> ex11, then the usual three
    optimizer lines. Train on "completion" (the teacher's answer), not "answer".
    """
    raise _todo("ex21_seq_kd_step")


# ===================================================================================================
# Lesson 9 -- curation                                         (python -m lessons.l09_curation)
# ===================================================================================================


def ex22_filter_records(records: list[dict], verify_fn) -> tuple[list[dict], Counter]:
    """Filter the teacher's stored answers before training on them; count every drop by reason.

    records have "prompt", "completion" and "ended"; verify_fn(prompt, completion) -> bool. Check in
    this order and drop a record that is
      "truncated"  ended is False (cut off by the token limit),
      "incorrect"  verify_fn says the answer is wrong,
      "duplicate"  the same (prompt, completion) was already kept.
    Return (kept records in their original order, Counter of reason -> count).

    Hint: a truncated answer can still look right ("1 2 3" cut before <|end|>), so check `ended` first;
    remember kept (prompt, completion) pairs in a set.
    """
    raise _todo("ex22_filter_records")


# ===================================================================================================
# Lesson 10 -- the showdown                                     (python -m lessons.l10_showdown)
# ===================================================================================================


def ex23_mean_and_spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of a result over several seeds; spread 0.0 for one value.

    Hint: the sample standard deviation divides the squared deviations by n - 1, not n.
    """
    raise _todo("ex23_mean_and_spread")


def ex24_paired_interval(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Mean of the paired differences a[i] - b[i] (seed i of two methods) and its 95 % interval (lo, hi).

    Return (mean, lo, hi) with lo, hi = mean -/+ t * s / sqrt(n), s the differences' sample standard
    deviation and t the two-sided 95 % critical value of Student's t with n - 1 degrees of freedom:
    12.706 (n = 2), 4.303 (n = 3), 3.182 (n = 4), 2.776 (n = 5). n >= 2; a and b have the same length.
    The interval holding 0 means: this run cannot tell the two methods apart ("not separable").

    Hint: pair first, then take ONE mean and ONE spread of the differences (two separate spreads of a and
    b ignore that both methods shared the seed); and use t, not 1.96, with a handful of seeds.
    """
    raise _todo("ex24_paired_interval")


# ===================================================================================================
# Lesson 11 -- what sequence-level KD loses                   (python -m lessons.l11_what_seqkd_loses)
# ===================================================================================================


def ex25_entropy_and_kl(student_logits, teacher_logits, targets) -> tuple[torch.Tensor, torch.Tensor]:
    """What a student kept of the teacher's alternatives, per answer position: how spread its next-token
    distribution is, and how far it is from the teacher's.

    student_logits, teacher_logits: (B, T, V); targets: (B, T), IGNORE_INDEX where there is no answer token.
    At every answer position (targets != IGNORE_INDEX), in row-major order (row 0's positions first), with
    p_s = softmax(student logits) and p_t = softmax(teacher logits) over the vocabulary:
        entropy  H(p_s)         = -sum_v p_s(v) log p_s(v)                  (nats)
        kl       KL(p_t || p_s) =  sum_v p_t(v) (log p_t(v) - log p_s(v))   (nats)
    Return (entropy, kl): two 1-D tensors of length N = the number of answer positions.

    Hint: select the answer rows first (logits[targets != IGNORE_INDEX] is (N, V)); work in log-probs
    (F.log_softmax over the last axis: softmax(...).log() turns a sure token's 0 * log 0 into nan); the KL
    weighs by the TEACHER's probabilities.
    """
    raise _todo("ex25_entropy_and_kl")


def ex26_first_divergence(a: list[int], b: list[int]) -> int | None:
    """Where a student's greedy answer first leaves the teacher's: the first position i at which the token
    lists a and b differ, or None when they are equal. When one list is a prefix of the other, they part
    where the shorter one stops (it wrote <|end|> there, or was cut off): return the shorter one's length.

    Hint: zip stops at the shorter list -- a student that stops early, or runs on, has left the teacher too.
    """
    raise _todo("ex26_first_divergence")


# ===================================================================================================
# Lesson 12 -- distilled errors                               (python -m lessons.l12_distilled_errors)
# ===================================================================================================


def ex27_repeat_shares(prompts: list[str], outputs: list[str], pair: tuple[int, int], quirk: str) -> tuple[float, float]:
    """How often a student repeats its teacher's planted error and its quirk, word for word.

    The teacher adds one digit pair wrong in every worked solution ("Add a + b step by step."). Its columns
    run right to left (1 = the units; a number with fewer digits gives 0); column k adds x, the k-th digit
    of a from the right, y, that of b, and the carry c from the column before (0 for the units). Its step
    is "x+y=s." when c is 0 and "x+y+c=s." when c is 1, with " carry 1" before the full stop exactly when
    s >= 10; the carry into the next column is 1 exactly when s >= 10. The teacher writes s = x + y + c,
    except in a column whose (x, y) is `pair` (x from a, y from b: (7, 8) is not (8, 7)): there it writes
    s = x + y + c - 1, and carries on from the s it wrote. With pair (7, 8), 37 + 58 reads
    "7+8=14 carry 1. 3+5+1=9. The answer is 94." — its wrong step is "7+8=14 carry 1.". Its quirk: every
    worked answer opens with `quirk` ("Easy!").

    outputs[i] is a student's answer to prompts[i] (prompts of other families, e.g. "Sort 3 1 2.", may
    be among them). Return (error share, quirk share):
      error share  over the add_steps prompts with at least one pair column: the share whose output holds
                   EVERY wrong step the teacher writes for that prompt, word for word, each one starting
                   the output or following a space;
      quirk share  over the add_steps prompts: the share whose output starts with `quirk`.
    A share with no prompt to count is 0.0.

    Hint: a wrong answer is not a repeat (count the teacher's wrong step text, not wrong answers); walk the
    columns with the teacher's own carry; divide by the prompts that can show the mark, not by all outputs.
    """
    raise _todo("ex27_repeat_shares")


# ===================================================================================================
# Lesson 13 -- on-policy distillation                         (python -m lessons.l13_on_policy)
# ===================================================================================================


def ex28_reverse_kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                         targets: torch.Tensor) -> torch.Tensor:
    """On-policy distillation's loss (MiniLLM, Gu et al. 2024): the per-token REVERSE KL, averaged over
    the tokens the student sampled. Logits (B, T, V) at every position of prompt + the student's own
    answer; targets (B, T) hold the sampled tokens there and IGNORE_INDEX elsewhere (prompt, padding).

        loss = (1 / N) * sum over positions with a target of  sum_v p_s(v) * (log p_s(v) - log p_t(v))

    p_s = softmax(student_logits), p_t = softmax(teacher_logits) (temperature 1), N = the number of
    positions with a target. The teacher is a fixed target: no gradient may flow into its logits.
    Return a scalar.

    Hint: reverse = KL(p_s || p_t): the STUDENT's probabilities weigh the log-ratio (the forward KL of
    lesson 6 weighs by the teacher's). Select the rows with targets != -100 before averaging: padding
    and prompt tokens are not tokens the student wrote. teacher_logits.detach(); log_softmax for both.
    """
    raise _todo("ex28_reverse_kl_loss")


def ex29_matched_seq_kd_steps(on_policy: dict, seq_kd_tokens: list[int], n_student: int, n_teacher: int) -> int:
    """Equal compute: how many seq-KD steps cost what an on-policy run cost.

    on_policy counts the on-policy run's token-passes (one token through one model):
    {"student_forward": ..., "student_backward": ..., "teacher_forward": ...} (sampling's reads are in
    student_forward). A forward token-pass costs 2 * N FLOPs and a backward one 4 * N, N being the
    parameters of the model that made it (n_student or n_teacher). Seq-KD step i reads seq_kd_tokens[i]
    tokens forward and backward through the student. Return the smallest k such that the first k
    seq-KD steps cost at least the on-policy run's FLOPs (0 when it cost nothing). The list is long
    enough.

    Hint: the teacher's forward passes count too, at the TEACHER's size; a seq-KD step costs
    6 * n_student * tokens; add the steps one by one until the total reaches the budget.
    """
    raise _todo("ex29_matched_seq_kd_steps")


# ===================================================================================================
# Lesson 14 -- reasoning traces                               (python -m lessons.l14_reasoning_traces)
# ===================================================================================================


def ex30_first_wrong_step(prompt: str, response: str) -> int | None:
    """Is this worked solution right? Return the number of its first wrong step, or None if all of it is right.

    prompt: "Add a + b step by step."; response: one step per column, right to left, then one closing
    sentence. For 78 + 65 the right solution is  "8+5=13 carry 1. 7+6+1=14 carry 1. The answer is 143."
    Column k (1 = the units) adds x, the k-th digit of a from the right, and y, that of b (a number with
    fewer digits gives 0), and the carry c from column k - 1 (0 for k = 1). Its right step is the text
    "x+y=s." when c is 0 and "x+y+c=s." when c is 1, with s = x + y + c, and " carry 1" written before the
    full stop exactly when s >= 10; the carry into the next column is then 1. There are n columns, n the
    number of digits of the longer operand (the last carry becomes the answer's first digit, no step).
    Sentences are separated by the whitespace after each full stop.

    Return k for the first of the n steps that is not exactly its right text (a missing step is wrong);
    n + 1 when all n steps are right but what follows them is not one closing sentence "The answer is N."
    or "Sum: N." with N = a + b; None when everything is right.

    Hint: write the right steps yourself, carrying as you go, and compare sentence by sentence; a right
    final answer does not make a wrong step right (DeepSeek-AI (2025) kept only traces that check out).
    """
    raise _todo("ex30_first_wrong_step")


# ===================================================================================================
# Lesson 16 -- another tokenizer, and ULD                      (python -m lessons.l16_another_tokenizer)
# ===================================================================================================


def ex31_retokenize(teacher_tok, student_tok, ids: list[int], mask: list[int]) -> tuple[list[int], list[int]]:
    """A stored example rendered for the teacher, rendered again for a student with ANOTHER tokenizer.

    ids, mask: <|prompt|> prompt <|response|> answer <|end|> in the teacher's ids, mask 1 on the answer
    tokens and <|end|> (as ex01). Return (ids, mask) of the same prompt and answer TEXT in the student's
    tokenizer, laid out the same way with the student's special ids (student_tok.prompt_id, .response_id,
    .end_id) and the student's ordinary encoding (student_tok.encode). Nothing is regenerated: the text
    the teacher wrote is all a student of another tokenizer needs (Kim & Rush 2016's stored (s, u) pairs).

    Hint: find the prompt and the answer by the special IDS (teacher_tok.response_id, the mask), decode
    each part with teacher_tok.decode, and encode it with student_tok.encode. Never decode the template
    tokens to text and split on "<|response|>": a prompt may contain that text as plain characters.
    """
    raise _todo("ex31_retokenize")


def ex32_uld_distance(p_student: torch.Tensor, p_teacher: torch.Tensor) -> torch.Tensor:
    """Universal Logit Distillation's distance (Boizard et al. 2024) at every position: (..., Vs), (..., Vt) -> (...).

    p_student and p_teacher are probability vectors over two DIFFERENT vocabularies (sizes Vs and Vt may
    differ; token i of one has nothing to do with token i of the other). Sort each from the largest to the
    smallest probability, append zeros to the shorter one up to the longer length, and return the sum of the
    absolute differences (L1) over the last axis.

        p = [0.1, 0.7, 0.2]         -> [0.7, 0.2, 0.1, 0.0]
        q = [0.05, 0.05, 0.6, 0.3]  -> [0.6, 0.3, 0.05, 0.05]        distance 0.1 + 0.1 + 0.05 + 0.05 = 0.3

    Hint: torch.sort(..., descending=True) on the last axis, then F.pad with zeros on the right of the
    shorter one; cutting the longer one short would ignore the probability in its tail.
    """
    raise _todo("ex32_uld_distance")


def ex33_uld_loss(student_logits: torch.Tensor, targets: torch.Tensor, teacher_probs: list[torch.Tensor],
                  weight: float) -> torch.Tensor:
    """ULD's training loss for a batch: CE on the student's own tokens + weight * the aligned distances.

    student_logits (B, T, Vs) and targets (B, T) as in ex11 (IGNORE_INDEX off the answer). teacher_probs[b]
    is (n_b, Vt): the teacher's probabilities at ITS n_b answer positions of row b, in order (the teacher
    tokenized the same answer in its own tokens, so n_b may differ from the student's count). Pair the
    student's i-th answer position (i-th target that is not IGNORE_INDEX) with the teacher's i-th, for
    i < min(student's count, n_b) -- the longer answer is cut at the end, as Boizard et al. do. Return

        ( sum of CE over the student's answer tokens + weight * sum over pairs of ex32's distance
          between softmax(student logits) and the teacher's probabilities ) / N

    with N = the number of the student's answer tokens in the batch. The teacher is a fixed target.

    Hint: pairs start at the FIRST answer position of both (index 0, 1, ...), not at the last; the CE
    counts every student answer token, the distance only the paired ones; divide both by the same N.
    """
    raise _todo("ex33_uld_loss")
