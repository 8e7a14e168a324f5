"""Lesson 7 exercise: what each kind of teacher signal costs on disk -- full logits, the top k, the text."""


def test_ex17_bytes_by_hand(wb):
    got = wb.ex17_storage_bytes(10, 297, 5, "The answer is 168.")
    assert got["full_fp32"] == 10 * 297 * 4, "full logits: positions x V x 4 bytes (float32)"
    assert got["full_fp16"] == 10 * 297 * 2
    assert got["topk"] == 10 * 5 * (2 + 2), \
        "top-k: positions x k x (2-byte id (V <= 32767 fits int16) + 2-byte float16 log-prob)"
    assert got["text"] == 18, "the answer text costs its UTF-8 bytes"


def test_ex17_big_vocabulary_needs_4_byte_ids(wb):
    got = wb.ex17_storage_bytes(100, 50257, 20, "x")
    assert got["topk"] == 100 * 20 * (4 + 2), "ids of a 50257-token vocabulary do not fit int16: 4-byte ids"
    assert got["full_fp32"] == 100 * 50257 * 4


def test_ex17_text_is_counted_in_utf8_bytes(wb):
    text = "Sorted: 1 2 3 — done ✓"
    got = wb.ex17_storage_bytes(3, 297, 1, text)
    assert got["text"] == len(text.encode("utf-8")), \
        f"bytes on disk are UTF-8 bytes ({len(text.encode('utf-8'))}), not characters ({len(text)})"


def test_ex17_text_is_far_cheaper(wb):
    got = wb.ex17_storage_bytes(40, 297, 20, "8+5=13 carry 1. 7+6+1=14 carry 1. 4+2+1=7. The answer is 743.")
    assert got["text"] < got["topk"] < got["full_fp16"] < got["full_fp32"], \
        "text < top-k < full logits: what sequence-level KD stores is the cheapest"
