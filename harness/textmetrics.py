"""Per-example and corpus text metrics for generation suites.

Every per-example function takes ``outputs`` (one string per example) and ``references`` (per
example, one or more acceptable references) and returns a float ``np.ndarray`` with one value
per example. With several references the best one wins: the maximum for a score, the minimum for
an error rate. The scores come from the libraries made for them (sacrebleu, rouge-score,
rapidfuzz); this module only feeds them and picks the best reference.

Corpus metrics (BLEU, corpus chrF) are not means of per-example values. ``bleu_stats`` and
``chrf_stats`` give each example's sufficient statistics, one row per example; the corpus score
of any resample of the examples is ``bleu_from_stats(stats[idx].sum(0))``, so a paired
bootstrap costs a sum per resample instead of a re-scoring.

Nothing here imports torch; rouge-score (which imports nltk) and sacrebleu are imported on first
use, so importing this module is cheap.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from rapidfuzz.distance import Levenshtein

if TYPE_CHECKING:
    from sacrebleu.metrics import BLEU, CHRF

__all__ = [
    "bleu_from_stats",
    "bleu_stats",
    "char_error_rate",
    "chrf",
    "chrf_from_stats",
    "chrf_stats",
    "corpus_bleu",
    "corpus_chrf",
    "exact_match",
    "exact_match_normalized",
    "normalize_answer",
    "rouge_l",
    "sentence_chrf_from_stats",
    "teacher_chrf",
    "teacher_match",
    "token_error_rate",
    "token_f1",
]


# --- input checks -------------------------------------------------------------------------------


def _check_outputs(outputs: Sequence[str], name: str = "outputs") -> list[str]:
    if isinstance(outputs, str) or not isinstance(outputs, Sequence):
        raise TypeError(
            f"{name}: expected a sequence of strings (one per example), got {type(outputs).__name__}"
        )
    for i, text in enumerate(outputs):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}]: expected a string, got {type(text).__name__}")
    return list(outputs)


def _check_inputs(
    outputs: Sequence[str], references: Sequence[Sequence[str]]
) -> tuple[list[str], list[list[str]]]:
    outs = _check_outputs(outputs)
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise TypeError(
            "references: expected a sequence (one entry per example) of sequences of reference "
            f"strings, got {type(references).__name__}"
        )
    if len(references) != len(outs):
        raise ValueError(
            f"references: {len(references)} entries for {len(outs)} outputs; expected one entry per example"
        )
    refs: list[list[str]] = []
    for i, example_refs in enumerate(references):
        if isinstance(example_refs, str):
            raise TypeError(
                f"references[{i}]: expected a list of acceptable references, got the string "
                f"{example_refs!r} (wrap it in a list)"
            )
        if not isinstance(example_refs, Sequence) or len(example_refs) == 0:
            raise ValueError(f"references[{i}]: expected at least one reference string")
        for j, ref in enumerate(example_refs):
            if not isinstance(ref, str):
                raise TypeError(f"references[{i}][{j}]: expected a string, got {type(ref).__name__}")
        refs.append(list(example_refs))
    return outs, refs


def _teacher_as_references(
    student_outputs: Sequence[str], teacher_outputs: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    student = _check_outputs(student_outputs, "student_outputs")
    teacher = _check_outputs(teacher_outputs, "teacher_outputs")
    if len(student) != len(teacher):
        raise ValueError(
            f"teacher_outputs: {len(teacher)} outputs for {len(student)} student outputs; "
            "expected one per example"
        )
    return student, [[t] for t in teacher]


# --- normalization ------------------------------------------------------------------------------


class _PunctuationTable(dict[int, Any]):
    """``str.translate`` table deleting Unicode punctuation (category P*) and ASCII punctuation.

    Filled lazily per code point: a full table over all of Unicode would cost a second to build.
    ASCII symbols such as ``$`` and ``+`` (category S*) are deleted too so that English answers
    normalize exactly as the official SQuAD script does.
    """

    def __missing__(self, codepoint: int) -> str | None:
        char = chr(codepoint)
        value = None if char in string.punctuation or unicodedata.category(char).startswith("P") else char
        self[codepoint] = value
        return value


_PUNCTUATION = _PunctuationTable()
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lower case, punctuation removed, articles (a/an/the) removed,
    whitespace collapsed to single spaces.

    Unicode-aware: letters, digits and combining marks of any script are kept; every Unicode
    punctuation character (category P*) is removed, as are ASCII symbols the SQuAD script removes.
    """
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


# --- exact match and token F1 -------------------------------------------------------------------


def exact_match(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """1.0 where the output equals one of its references after stripping surrounding whitespace."""
    outs, refs = _check_inputs(outputs, references)
    return np.array(
        [float(any(out.strip() == r.strip() for r in rs)) for out, rs in zip(outs, refs, strict=True)],
        dtype=float,
    )


def exact_match_normalized(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """1.0 where ``normalize_answer(output)`` equals ``normalize_answer`` of one of its references."""
    outs, refs = _check_inputs(outputs, references)
    return np.array(
        [
            float(any(normalize_answer(out) == normalize_answer(r) for r in rs))
            for out, rs in zip(outs, refs, strict=True)
        ],
        dtype=float,
    )


def _f1(prediction: list[str], reference: list[str]) -> float:
    # SQuAD v2 convention: an empty answer is right only against an empty reference.
    if not prediction or not reference:
        return float(prediction == reference)
    same = sum((Counter(prediction) & Counter(reference)).values())
    if same == 0:
        return 0.0
    precision = same / len(prediction)
    recall = same / len(reference)
    return 2 * precision * recall / (precision + recall)


def token_f1(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """SQuAD token F1 between the normalized output and the best reference (0..1).

    Tokens are the whitespace-separated words of ``normalize_answer``; an empty output scores 1.0
    against an empty reference and 0.0 against any other.
    """
    outs, refs = _check_inputs(outputs, references)
    values = []
    for out, rs in zip(outs, refs, strict=True):
        tokens = normalize_answer(out).split()
        values.append(max(_f1(tokens, normalize_answer(r).split()) for r in rs))
    return np.array(values, dtype=float)


# --- ROUGE-L ------------------------------------------------------------------------------------


class _WordTable(dict[int, Any]):
    """``str.translate`` table that turns every character that cannot be part of a word into a
    space and puts spaces around each Han, kana or other unspaced-script character.

    Word characters are letters, digits, combining marks and ``_``. ``\\w`` alone is not enough:
    Python's ``re`` does not count combining marks (Devanagari vowel signs, the virama) as word
    characters, so ``re.findall(r"\\w+", "नमस्ते")`` cuts the word into pieces. Chinese and
    Japanese write no spaces between words, so each of their characters is a token of its own.
    """

    _UNSPACED = ("CJK", "HIRAGANA", "KATAKANA")

    def __missing__(self, codepoint: int) -> str:
        char = chr(codepoint)
        category = unicodedata.category(char)
        if category[0] in "LNM" or char == "_":
            value = (
                f" {char} "
                if category == "Lo" and unicodedata.name(char, "").startswith(self._UNSPACED)
                else char
            )
        else:
            value = " "
        self[codepoint] = value
        return value


_WORDS = _WordTable()


class UnicodeWordTokenizer:
    """rouge-score tokenizer keeping words of every script (rouge-score's own keeps only [a-z0-9]).

    Lower-cases, splits on anything that is not a letter, digit, combining mark or ``_``, and
    splits Chinese and Japanese text into single characters. No stemming.
    """

    def tokenize(self, text: str) -> list[str]:
        return text.lower().translate(_WORDS).split()


@functools.cache
def _rouge_l_scorer() -> Any:
    from rouge_score import rouge_scorer  # imports nltk: only when ROUGE is asked for

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=UnicodeWordTokenizer())


def rouge_l(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """rouge-score's ROUGE-L F-measure (0..1) against the best reference (``score_multi``).

    Tokens come from :class:`UnicodeWordTokenizer`. As in rouge-score, an output or reference
    with no tokens scores 0.0 (an empty output against an empty reference too).
    """
    outs, refs = _check_inputs(outputs, references)
    scorer = _rouge_l_scorer()
    if hasattr(scorer, "score_multi"):
        return np.array(
            [scorer.score_multi(rs, out)["rougeL"].fmeasure for out, rs in zip(outs, refs, strict=True)],
            dtype=float,
        )
    return np.array(  # rouge-score before score_multi existed
        [
            max(scorer.score(r, out)["rougeL"].fmeasure for r in rs)
            for out, rs in zip(outs, refs, strict=True)
        ],
        dtype=float,
    )


# --- sacrebleu: chrF and BLEU -------------------------------------------------------------------


@functools.cache
def _chrf_metric() -> CHRF:
    from sacrebleu.metrics import CHRF

    return CHRF()


@functools.cache
def _bleu_metric() -> BLEU:
    from sacrebleu.metrics import BLEU

    # force=True only silences sacrebleu's "looks tokenized" log warning; the score is unchanged.
    return BLEU(force=True)


def _reference_streams(refs: list[list[str]]) -> list[list[str | None]]:
    """Per-example reference lists transposed into sacrebleu's reference streams.

    sacrebleu's corpus API takes one stream per reference position; an example with fewer
    references than the longest list is padded with ``None``, which sacrebleu drops for that
    example (``Metric._cache_references``). So these statistics equal
    ``sacrebleu.corpus_bleu(outputs, streams)`` on the same padded streams.
    """
    width = max(len(rs) for rs in refs)
    return [[rs[i] if i < len(rs) else None for rs in refs] for i in range(width)]


def _stats(metric: Any, outs: list[str], refs: list[list[str]], width: int) -> np.ndarray:
    if not outs:
        return np.zeros((0, width), dtype=np.int64)
    # The same per-segment statistics corpus_score sums, and sacrebleu.significance resamples.
    rows = metric._extract_corpus_statistics(outs, _reference_streams(refs))
    return np.array(rows, dtype=np.int64).reshape(len(outs), width)


def _check_summed(summed_stats: np.ndarray, width: int, name: str) -> list[int]:
    stats = np.asarray(summed_stats)
    if stats.shape != (width,):
        raise ValueError(
            f"{name}: expected the summed statistics, a vector of {width} counts "
            f"(stats.sum(0)), got shape {stats.shape}"
        )
    return [int(v) for v in stats.tolist()]


def _chrf_width() -> int:
    metric = _chrf_metric()
    return 3 * (metric.char_order + metric.word_order)


def _bleu_width() -> int:
    return 2 + 2 * _bleu_metric().max_ngram_order


def chrf_stats(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """sacrebleu chrF sufficient statistics, an int array of shape (n, 18).

    Each row holds [hypothesis, reference, match] n-gram counts per character order, taken
    against the example's best reference (sacrebleu picks it by sentence chrF).
    """
    outs, refs = _check_inputs(outputs, references)
    return _stats(_chrf_metric(), outs, refs, _chrf_width())


def chrf_from_stats(summed_stats: np.ndarray) -> float:
    """Corpus chrF (0..1) from chrF statistics summed over examples (``chrf_stats(...)[idx].sum(0)``)."""
    metric = _chrf_metric()
    return float(metric._compute_f_score(_check_summed(summed_stats, _chrf_width(), "summed_stats"))) / 100


def corpus_chrf(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus chrF (0..1); equals ``sacrebleu.corpus_chrf(outputs, streams).score / 100``."""
    return chrf_from_stats(chrf_stats(outputs, references).sum(0))


def sentence_chrf_from_stats(stats: np.ndarray) -> np.ndarray:
    """Sentence chrF (0..1) of each row of ``chrf_stats``: lets a caller that needs both the
    per-example and the corpus chrF extract the n-grams once (they are most of chrF's cost).
    """
    rows = np.asarray(stats)
    width = _chrf_width()
    if rows.ndim != 2 or rows.shape[1] != width:
        raise ValueError(f"stats: expected chrf_stats rows of shape (n, {width}), got shape {rows.shape}")
    metric = _chrf_metric()
    return np.array([metric._compute_f_score(row) / 100 for row in rows.tolist()], dtype=float)


def chrf(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """Sentence chrF (0..1) per example against the best reference.

    Equals ``sacrebleu.metrics.CHRF().sentence_score(output, refs).score / 100``; computed from
    the same statistics in one pass instead of one sacrebleu call per example.
    """
    return sentence_chrf_from_stats(chrf_stats(outputs, references))


def bleu_stats(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """sacrebleu BLEU sufficient statistics (13a tokenization), an int array of shape (n, 10).

    Each row is [output length, closest reference length, matches for 1..4-grams, totals for
    1..4-grams], with n-gram counts clipped by the maximum over the example's references.
    """
    outs, refs = _check_inputs(outputs, references)
    return _stats(_bleu_metric(), outs, refs, _bleu_width())


def bleu_from_stats(summed_stats: np.ndarray) -> float:
    """Corpus BLEU (0..1, sacrebleu defaults) from statistics summed over examples."""
    metric = _bleu_metric()
    stats = _check_summed(summed_stats, _bleu_width(), "summed_stats")
    return float(metric._compute_score_from_stats(stats).score) / 100


def corpus_bleu(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (0..1); equals ``sacrebleu.corpus_bleu(outputs, streams).score / 100``."""
    return bleu_from_stats(bleu_stats(outputs, references).sum(0))


# --- edit distance ------------------------------------------------------------------------------


def char_error_rate(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """Character edit distance / reference length (``max(len(ref), 1)``), the lowest over the
    references. Lower is better; it can exceed 1.0 when the output is longer than the reference.
    """
    outs, refs = _check_inputs(outputs, references)
    return np.array(
        [
            min(Levenshtein.distance(out, r) / max(len(r), 1) for r in rs)
            for out, rs in zip(outs, refs, strict=True)
        ],
        dtype=float,
    )


def token_error_rate(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """Edit distance over whitespace-separated tokens / number of reference tokens (at least 1),
    the lowest over the references. Word error rate for text; phoneme error rate for
    space-separated phonemes (g2p).
    """
    outs, refs = _check_inputs(outputs, references)
    values = []
    for out, rs in zip(outs, refs, strict=True):
        tokens = out.split()
        values.append(min(Levenshtein.distance(tokens, r.split()) / max(len(r.split()), 1) for r in rs))
    return np.array(values, dtype=float)


# --- teacher fidelity ---------------------------------------------------------------------------


def teacher_match(student_outputs: Sequence[str], teacher_outputs: Sequence[str]) -> np.ndarray:
    """1.0 where the student's output equals the teacher's after ``normalize_answer`` (label-free)."""
    student, teacher = _teacher_as_references(student_outputs, teacher_outputs)
    return np.array(
        [float(normalize_answer(s) == normalize_answer(t[0])) for s, t in zip(student, teacher, strict=True)],
        dtype=float,
    )


def teacher_chrf(student_outputs: Sequence[str], teacher_outputs: Sequence[str]) -> np.ndarray:
    """Sentence chrF (0..1) of the student's output with the teacher's as the one reference."""
    student, teacher = _teacher_as_references(student_outputs, teacher_outputs)
    return chrf(student, teacher)
