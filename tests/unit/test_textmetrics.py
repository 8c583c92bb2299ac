"""textmetrics.py: each generation metric against its library's own computation on fixed text."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sacrebleu
from rapidfuzz.distance import Levenshtein
from rouge_score import rouge_scorer
from sacrebleu.metrics import CHRF

from harness import textmetrics as tm

# Several references per example, a ragged number of them, an empty output, non-Latin text.
OUTPUTS = [
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog",
    "",
    "Paris is the capital of France",
    "hello world .",
    "Η γάτα κάθεται στο χαλί",
    "Кошка сидит на ковре",
    "我爱北京天安门",
    "नमस्ते दुनिया",
    "totally unrelated words here",
]
REFERENCES = [
    ["the cat sat on the mat", "a cat was sitting on the mat"],
    ["the quick brown fox jumped over the lazy dog"],
    ["", "nothing"],
    ["Paris is France's capital.", "The capital of France is Paris", "Paris"],
    ["hello world"],
    ["Η γάτα κάθεται στο χαλί"],
    ["Кот сидит на ковре", "Кошка лежит на ковре"],
    ["我爱北京天安门"],
    ["नमस्ते मित्र"],
    ["the cat sat on the mat"],
]
NON_LATIN = ["Η γάτα κάθεται στο χαλί", "Кошка сидит на ковре", "我爱北京天安门", "नमस्ते दुनिया"]


def streams(references):
    """sacrebleu's reference streams, ragged examples padded with None."""
    width = max(len(rs) for rs in references)
    return [[rs[i] if i < len(rs) else None for rs in references] for i in range(width)]


# --- normalize_answer ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat, sat!", "cat sat"),  # SQuAD: case, punctuation, articles
        ("  an   apple\ta day ", "apple day"),
        ("$5 + tax = total", "5 tax total"),  # ASCII symbols go, as in the SQuAD script
        ("«Qué?» ¿Dónde está el baño?", "qué dónde está el baño"),  # Unicode punctuation
        ("你好，世界。", "你好世界"),  # CJK punctuation; Han kept
        ("नमस्ते, दुनिया!", "नमस्ते दुनिया"),  # combining marks kept
        ("theater another", "theater another"),  # articles only as whole words
        ("", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert tm.normalize_answer(text) == expected


# --- exact match, token F1 ----------------------------------------------------------------------


def test_exact_match_strips_whitespace_and_takes_any_reference():
    values = tm.exact_match(
        [" Paris\n", "paris", "Lyon", ""], [["Paris"], ["Paris"], ["Paris", "Lyon"], [""]]
    )
    assert values.dtype == float
    assert values.tolist() == [1.0, 0.0, 1.0, 1.0]


def test_exact_match_normalized():
    values = tm.exact_match_normalized(
        ["The Paris!", "Paris", "Μόσχα.", "London"], [["paris"], ["A paris"], ["μόσχα"], ["Paris", "Rome"]]
    )
    assert values.tolist() == [1.0, 1.0, 1.0, 0.0]


def test_token_f1_squad_values():
    values = tm.token_f1(
        ["the cat sat", "cat", "", "", "dog", "sat cat sat"],
        [["cat sat down"], ["dog", "cat"], [""], ["x"], ["cat"], ["cat sat"]],
    )
    # p=1, r=2/3; best reference; both empty; empty vs not; no overlap; p=2/3, r=1
    np.testing.assert_allclose(values, [0.8, 1.0, 1.0, 0.0, 0.0, 0.8])


# --- ROUGE-L ------------------------------------------------------------------------------------


def test_rouge_l_equals_rouge_score_on_english():
    outs = ["the cat sat on the mat", "a quick brown fox", "hello there general kenobi", "x"]
    refs = [["the cat was on the mat"], ["the quick brown fox jumps", "quick fox"], ["hello there"], ["y"]]
    default = rouge_scorer.RougeScorer(["rougeL"])  # rouge-score's own tokenizer, no stemming
    expected = [default.score_multi(rs, out)["rougeL"].fmeasure for out, rs in zip(outs, refs, strict=True)]
    np.testing.assert_allclose(tm.rouge_l(outs, refs), expected)
    assert 0 < expected[0] < 1


def test_rouge_l_equals_rouge_score_with_our_tokenizer():
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=tm.UnicodeWordTokenizer())
    expected = [
        scorer.score_multi(rs, out)["rougeL"].fmeasure for out, rs in zip(OUTPUTS, REFERENCES, strict=True)
    ]
    np.testing.assert_allclose(tm.rouge_l(OUTPUTS, REFERENCES), expected)


def test_rouge_l_best_reference_wins():
    values = tm.rouge_l(["paris"], [["the capital is rome", "paris"]])
    assert values.tolist() == [1.0]


@pytest.mark.parametrize("text", NON_LATIN)
def test_rouge_l_non_latin_exact_match_is_one(text):
    # rouge-score's default tokenizer keeps only [a-z0-9]: it scores these 0.
    assert rouge_scorer.RougeScorer(["rougeL"]).score(text, text)["rougeL"].fmeasure == 0.0
    assert tm.rouge_l([text], [[text]]).tolist() == [1.0]


def test_rouge_l_non_latin_partial_matches():
    values = tm.rouge_l(["नमस्ते दुनिया", "我爱你", "Кошка сидит"], [["नमस्ते मित्र"], ["我爱他"], ["кошка спит"]])
    # Devanagari words stay whole (one of two shared); Han is one token a character (2 of 3).
    np.testing.assert_allclose(values, [0.5, 2 / 3, 0.5])


def test_unicode_word_tokenizer():
    tokens = tm.UnicodeWordTokenizer().tokenize("Hello, World! नमस्ते 我爱你 Привет_мир γειά-σου")
    assert tokens == ["hello", "world", "नमस्ते", "我", "爱", "你", "привет_мир", "γειά", "σου"]


def test_rouge_l_empty_is_zero_as_in_rouge_score():
    assert tm.rouge_l(["", "a b"], [[""], [""]]).tolist() == [0.0, 0.0]


# --- chrF ---------------------------------------------------------------------------------------


def test_chrf_equals_sacrebleu_sentence_score():
    metric = CHRF()
    expected = [
        metric.sentence_score(out, rs).score / 100 for out, rs in zip(OUTPUTS, REFERENCES, strict=True)
    ]
    values = tm.chrf(OUTPUTS, REFERENCES)
    np.testing.assert_allclose(values, expected)
    assert values[5] == 1.0 and values[7] == 1.0  # non-Latin exact matches
    assert values[2] == 0.0  # sacrebleu scores an empty output 0


def test_sentence_chrf_from_stats_matches_chrf():
    stats = tm.chrf_stats(OUTPUTS, REFERENCES)
    np.testing.assert_array_equal(tm.sentence_chrf_from_stats(stats), tm.chrf(OUTPUTS, REFERENCES))
    with pytest.raises(ValueError, match=r"shape \(n, 18\)"):
        tm.sentence_chrf_from_stats(stats.sum(0))


def test_teacher_chrf_and_teacher_match():
    student = ["The answer is 42.", "Paris", "Кошка", ""]
    teacher = ["the answer is 42", "Lyon", "кошка!", ""]
    metric = CHRF()
    expected = [metric.sentence_score(s, [t]).score / 100 for s, t in zip(student, teacher, strict=True)]
    np.testing.assert_allclose(tm.teacher_chrf(student, teacher), expected)
    assert tm.teacher_match(student, teacher).tolist() == [1.0, 0.0, 1.0, 1.0]


# --- edit distance ------------------------------------------------------------------------------


def test_char_error_rate_equals_rapidfuzz():
    expected = [
        min(Levenshtein.distance(out, r) / max(len(r), 1) for r in rs)
        for out, rs in zip(OUTPUTS, REFERENCES, strict=True)
    ]
    values = tm.char_error_rate(OUTPUTS, REFERENCES)
    np.testing.assert_allclose(values, expected)
    assert values[2] == 0.0  # empty output, empty reference
    assert values[5] == 0.0


def test_char_error_rate_lowest_over_references_and_empty_reference():
    values = tm.char_error_rate(["kitten", "abc", "ab"], [["sitting", "kitten!"], [""], ["abcd"]])
    np.testing.assert_allclose(values, [1 / 7, 3.0, 0.5])


def test_token_error_rate_as_phoneme_error_rate():
    # g2p: space-separated ARPAbet phonemes; one substitution out of four, one deletion of three.
    values = tm.token_error_rate(
        ["K AE T S", "D AO", "HH AH L OW"], [["K AE T Z", "K AH T S IH"], ["D AO G"], ["HH AH L OW"]]
    )
    np.testing.assert_allclose(values, [0.25, 1 / 3, 0.0])
    expected = [
        min(Levenshtein.distance(out.split(), r.split()) / max(len(r.split()), 1) for r in rs)
        for out, rs in zip(OUTPUTS, REFERENCES, strict=True)
    ]
    np.testing.assert_allclose(tm.token_error_rate(OUTPUTS, REFERENCES), expected)


# --- corpus BLEU and chrF from sufficient statistics --------------------------------------------


def test_corpus_bleu_equals_sacrebleu_with_ragged_references():
    expected = sacrebleu.corpus_bleu(OUTPUTS, streams(REFERENCES)).score / 100
    assert tm.corpus_bleu(OUTPUTS, REFERENCES) == pytest.approx(expected, abs=1e-12)
    assert 0 < expected < 1
    stats = tm.bleu_stats(OUTPUTS, REFERENCES)
    assert stats.shape == (len(OUTPUTS), 10) and stats.dtype == np.int64


def test_corpus_chrf_equals_sacrebleu_with_ragged_references():
    expected = sacrebleu.corpus_chrf(OUTPUTS, streams(REFERENCES)).score / 100
    assert tm.corpus_chrf(OUTPUTS, REFERENCES) == pytest.approx(expected, abs=1e-12)
    assert tm.chrf_stats(OUTPUTS, REFERENCES).shape == (len(OUTPUTS), 18)


def test_resampled_stats_equal_sacrebleu_on_the_resample():
    # A bootstrap resample: repeats and omissions. Summed rows must score what sacrebleu gives
    # the resampled corpus itself.
    idx = [0, 0, 3, 5, 6, 6, 6, 9, 1, 7]
    outs = [OUTPUTS[i] for i in idx]
    refs = [REFERENCES[i] for i in idx]
    bleu_rows = tm.bleu_stats(OUTPUTS, REFERENCES)
    chrf_rows = tm.chrf_stats(OUTPUTS, REFERENCES)
    assert tm.bleu_from_stats(bleu_rows[idx].sum(0)) == pytest.approx(
        sacrebleu.corpus_bleu(outs, streams(refs)).score / 100, abs=1e-12
    )
    assert tm.chrf_from_stats(chrf_rows[idx].sum(0)) == pytest.approx(
        sacrebleu.corpus_chrf(outs, streams(refs)).score / 100, abs=1e-12
    )


def test_corpus_metrics_of_no_examples_are_zero():
    assert tm.bleu_stats([], []).shape == (0, 10)
    assert tm.bleu_from_stats(tm.bleu_stats([], []).sum(0)) == 0.0
    assert tm.chrf_from_stats(tm.chrf_stats([], []).sum(0)) == 0.0


def test_from_stats_rejects_unsummed_rows():
    rows = tm.bleu_stats(OUTPUTS, REFERENCES)
    with pytest.raises(ValueError, match=r"summed_stats: expected the summed statistics, a vector of 10"):
        tm.bleu_from_stats(rows)


# --- shapes and bad input -----------------------------------------------------------------------

PER_EXAMPLE = [
    tm.exact_match,
    tm.exact_match_normalized,
    tm.token_f1,
    tm.rouge_l,
    tm.chrf,
    tm.char_error_rate,
    tm.token_error_rate,
]


@pytest.mark.parametrize("fn", PER_EXAMPLE, ids=lambda f: f.__name__)
def test_per_example_shape_and_empty_input(fn):
    values = fn(OUTPUTS, REFERENCES)
    assert values.shape == (len(OUTPUTS),) and values.dtype == float
    assert fn([], []).shape == (0,)


@pytest.mark.parametrize("fn", PER_EXAMPLE, ids=lambda f: f.__name__)
def test_bad_references_name_the_example(fn):
    with pytest.raises(TypeError, match=r"references\[1\]: expected a list of acceptable references"):
        fn(["a", "b"], [["a"], "b"])
    with pytest.raises(ValueError, match=r"references\[0\]: expected at least one reference"):
        fn(["a"], [[]])
    with pytest.raises(ValueError, match=r"references: 1 entries for 2 outputs"):
        fn(["a", "b"], [["a"]])
    with pytest.raises(TypeError, match=r"outputs\[0\]: expected a string, got NoneType"):
        fn([None], [["a"]])


def test_teacher_lengths_must_match():
    with pytest.raises(ValueError, match=r"teacher_outputs: 1 outputs for 2 student outputs"):
        tm.teacher_match(["a", "b"], ["a"])


def test_import_is_light():
    code = (
        "import sys, harness.textmetrics; "
        "print(sorted(m for m in ('torch', 'nltk', 'rouge_score', 'sacrebleu') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
