"""Judges: a model reads the prompt and the answers and says which is better, or scores one.

A judge is a versioned interface like the teacher (DESIGN, "Judges — model-graded checks"): its
model, its instructions (a prompt file of the repository) and its verdict pattern are
fingerprinted and cached one judgment at a time, and its verdicts become per-example values —
the metric ``judge:<name>`` — that every scope, Benjamini–Hochberg family, pocket search,
baseline and history handles like any other per-example metric.

Pairwise, per judgment (one order): 1 when the judge prefers the student, 0 when it prefers the
teacher, ½ for a tie. With ``swap`` the judge answers in both orders and the example's value is
the mean of the two (a win and a loss make ½: position bias cancels; a win and a tie ¾);
without it one order per example, chosen by a seeded hash of the id (half each way, and the
same half on every run). An invalid judgment (no verdict in the answer) takes its example out
of the metric: its value is NaN, which the gate leaves out of the check (``n`` says so).

Pointwise, the judge scores each answer alone on ``scale``; the student's and the teacher's
scores are compared as paired per-example values (``teacher_delta`` / ``teacher_ratio``).

Health figures (each also a gateable metric ``judge_<figure>:<name>``):
- consistency: share of examples whose two orders gave the same verdict (after un-swapping);
- first_preferred: share of decisive judgments choosing the answer shown first (0.5 unbiased);
- longer_preferred: share of decisive judgments, between answers of different length in
  characters, choosing the longer (0.5 unbiased);
- invalid_rate: share of judgments (requests) without a verdict;
- lc_win_rate: the length-controlled win rate, a logistic regression of the example's outcome
  (fractional outcomes as weights) on tanh((student length − teacher length) / its standard
  deviation), read at no difference; its CI by a seeded paired bootstrap over examples. This is
  AlpacaEval's ``glm_winrate`` model without its instruction-difficulty term (one suite, not a
  leaderboard across instructions) and without its regularisation;
- agreement with a person's verdicts (``judge_labels``), with Cohen's kappa.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.spec_types import PAIRWISE_VERDICT, POINTWISE_VERDICT

__all__ = ["PAIRWISE_VERDICT", "POINTWISE_VERDICT"]  # the defaults, for callers of parse_verdict

STUDENT_FIRST = "student_first"
TEACHER_FIRST = "teacher_first"
ORDERS = (STUDENT_FIRST, TEACHER_FIRST)
#: What a person's label (``judge_labels``) may say, and the example outcome it stands for.
HUMAN_VERDICTS = {"student": 1.0, "teacher": 0.0, "tie": 0.5}


def render(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with every placeholder replaced by ``values[name]`` as text (not parsed)."""
    return template.format_map({k: "" if v is None else str(v) for k, v in values.items()})


def parse_verdict(text: str | None, pattern: str | re.Pattern[str]) -> str | None:
    """The judge's verdict: the first group of the LAST match of ``pattern`` (None: invalid).

    The last match wins because judges reason first and conclude last; a verdict quoted in
    the reasoning ("…a [[A]] would mean…") must not decide.
    """
    if not text:
        return None
    rx = _compiled(pattern) if isinstance(pattern, str) else pattern
    matches = list(rx.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    return last.group(1) if rx.groups else last.group(0)


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    """A verdict pattern, compiled once per run (checked when the suite loaded)."""
    from harness.spec import compile_pattern

    return compile_pattern(pattern)


def order_of(example_id: str, seed: int) -> str:
    """The one order an example is judged in without ``swap``: a seeded hash of its id."""
    digest = hashlib.sha256(f"{seed}\x00{example_id}".encode()).digest()
    return STUDENT_FIRST if digest[0] % 2 == 0 else TEACHER_FIRST


def orders(example_ids: Sequence[str], *, swap: bool, seed: int) -> list[tuple[str, ...]]:
    """Per example, the orders it is judged in (both with ``swap``)."""
    if swap:
        return [ORDERS for _ in example_ids]
    return [(order_of(i, seed),) for i in example_ids]


def pairwise_value(verdict: str | None, order: str) -> float:
    """One pairwise judgment as the student's outcome: 1 win, 0 loss, ½ tie, NaN invalid.

    ``verdict`` is ``A`` (the first answer shown), ``B`` (the second) or ``C`` (a tie).
    """
    if verdict is None:
        return math.nan
    v = verdict.strip().upper()
    if v == "C":
        return 0.5
    if v not in ("A", "B"):
        return math.nan
    student_shown_first = order == STUDENT_FIRST
    return 1.0 if (v == "A") == student_shown_first else 0.0


def pointwise_value(verdict: str | None, scale: tuple[float, float]) -> float:
    """A pointwise score, NaN when missing or outside ``scale``."""
    if verdict is None:
        return math.nan
    try:
        score = float(verdict)
    except ValueError:
        return math.nan
    lo, hi = scale
    return score if lo <= score <= hi and math.isfinite(score) else math.nan


@dataclass(frozen=True)
class PairwiseJudgments:
    """Every pairwise judgment of a run, per example and order (NaN: not asked or invalid).

    ``student_first[i]`` / ``teacher_first[i]`` are the student's outcomes (1, ½, 0) in the
    judgment that showed the student's answer first / second; ``asked`` marks which orders
    were asked.
    """

    ids: tuple[str, ...]
    student_first: np.ndarray
    teacher_first: np.ndarray
    asked_student_first: np.ndarray
    asked_teacher_first: np.ndarray

    def values(self) -> np.ndarray:
        """The example's outcome: the mean of its asked judgments; NaN if any was invalid."""
        sf = np.where(self.asked_student_first, self.student_first, 0.0)
        tf = np.where(self.asked_teacher_first, self.teacher_first, 0.0)
        count = self.asked_student_first.astype(float) + self.asked_teacher_first.astype(float)
        invalid = ((self.asked_student_first & np.isnan(self.student_first))
                   | (self.asked_teacher_first & np.isnan(self.teacher_first)) | (count == 0))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (np.nan_to_num(sf) + np.nan_to_num(tf)) / count
        out[invalid] = np.nan
        return out

    @property
    def requests(self) -> int:
        return int(self.asked_student_first.sum() + self.asked_teacher_first.sum())

    def invalid(self) -> int:
        """Judgments (requests) that gave no verdict."""
        return int((self.asked_student_first & np.isnan(self.student_first)).sum()
                   + (self.asked_teacher_first & np.isnan(self.teacher_first)).sum())


def collect_pairwise(ids: Sequence[str], plan: Sequence[tuple[str, ...]],
                     verdicts: Mapping[tuple[str, str], str | None]) -> PairwiseJudgments:
    """Per-example judgments from the parsed verdicts ``{(example id, order): verdict}``."""
    n = len(ids)
    sf, tf = np.full(n, np.nan), np.full(n, np.nan)
    asked_sf, asked_tf = np.zeros(n, bool), np.zeros(n, bool)
    for i, (ex, example_orders) in enumerate(zip(ids, plan, strict=True)):
        for order in example_orders:
            value = pairwise_value(verdicts.get((ex, order)), order)
            if order == STUDENT_FIRST:
                asked_sf[i], sf[i] = True, value
            else:
                asked_tf[i], tf[i] = True, value
    return PairwiseJudgments(ids=tuple(ids), student_first=sf, teacher_first=tf,
                             asked_student_first=asked_sf, asked_teacher_first=asked_tf)


# --------------------------------------------------------------------------- health

def consistency(j: PairwiseJudgments) -> float | None:
    """Share of examples asked in both orders, both valid, whose verdicts agree (un-swapped)."""
    both = (j.asked_student_first & j.asked_teacher_first
            & ~np.isnan(j.student_first) & ~np.isnan(j.teacher_first))
    if not both.any():
        return None
    return float(np.mean(j.student_first[both] == j.teacher_first[both]))


def first_preferred(j: PairwiseJudgments) -> float | None:
    """Share of decisive judgments (not ties, not invalid) that chose the answer shown first."""
    # student shown first: a win chose the first; teacher shown first: a loss chose the first
    sf = j.student_first[j.asked_student_first]
    tf = j.teacher_first[j.asked_teacher_first]
    sf, tf = sf[(sf == 0.0) | (sf == 1.0)], tf[(tf == 0.0) | (tf == 1.0)]
    decisive = len(sf) + len(tf)
    if not decisive:
        return None
    return float(((sf == 1.0).sum() + (tf == 0.0).sum()) / decisive)


def longer_preferred(j: PairwiseJudgments, student_len: np.ndarray,
                     teacher_len: np.ndarray) -> float | None:
    """Share of decisive judgments between answers of different length that chose the longer."""
    student_longer = np.asarray(student_len) > np.asarray(teacher_len)
    differ = np.asarray(student_len) != np.asarray(teacher_len)
    chose_longer = decisive = 0
    for asked, vals in ((j.asked_student_first, j.student_first),
                        (j.asked_teacher_first, j.teacher_first)):
        keep = asked & differ & ((vals == 0.0) | (vals == 1.0))
        decisive += int(keep.sum())
        chose_longer += int(((vals[keep] == 1.0) == student_longer[keep]).sum())
    return chose_longer / decisive if decisive else None


def _lc_fit(outcome: np.ndarray, x: np.ndarray, counts: np.ndarray, iterations: int = 50,
            start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """sigmoid(intercept) of a weighted logistic fit of ``outcome`` (in [0, 1]) on ``x``.

    ``outcome`` and ``x`` are the distinct (outcome, x) pairs of the data; ``counts`` says how
    many examples of each pair a fit sees: one row per fit (the data itself, or one bootstrap
    replicate each), all fitted at once. A fractional outcome y is the weighted pair (1,
    weight y) and (0, weight 1 − y), whose log-likelihood is y·log p + (1 − y)·log(1 − p): a
    binomial GLM with a fractional response, fitted by Newton–Raphson on (intercept, slope).
    Written here rather than with scikit-learn's ``LogisticRegression`` because the paired
    bootstrap needs a thousand fits of two parameters, which one vectorized Newton loop over
    the distinct pairs does in a fraction of a second. Returns the fitted rates and the
    (intercept, slope) of each row.
    """
    y, x = np.asarray(outcome, float)[None, :], np.asarray(x, float)[None, :]
    n_of = np.atleast_2d(counts).astype(float)
    beta = np.zeros((n_of.shape[0], 2)) if start is None else np.tile(start, (n_of.shape[0], 1))
    # Separable data has no finite optimum: a ridge of 1e-6 per example keeps the Newton steps
    # finite and moves a finite fit by far less than the bootstrap's own error.
    ridge = 1e-6 * n_of.sum(1)[:, None]
    for _ in range(iterations):
        eta = beta[:, :1] + beta[:, 1:] * x
        p = 1.0 / (1.0 + np.exp(-np.clip(eta, -30, 30)))
        r = n_of * (y - p)
        w = n_of * p * (1.0 - p)
        g = np.stack([r.sum(1), (r * x).sum(1)], 1) - ridge * beta
        h00 = w.sum(1) + ridge[:, 0]
        h01 = (w * x).sum(1)
        h11 = (w * x * x).sum(1) + ridge[:, 0]
        det = h00 * h11 - h01 * h01
        step = np.stack([(h11 * g[:, 0] - h01 * g[:, 1]) / det,
                         (h00 * g[:, 1] - h01 * g[:, 0]) / det], 1)
        beta += step
        if np.max(np.abs(step)) < 1e-7:
            break
    return 1.0 / (1.0 + np.exp(-beta[:, 0])), beta


def length_controlled(outcome: np.ndarray, student_len: np.ndarray, teacher_len: np.ndarray,
                      *, confidence: float = 0.90, n_boot: int = 1000, seed: int = 0
                      ) -> tuple[float | None, tuple[float, float] | None]:
    """The length-controlled win rate and its seeded paired-bootstrap percentile CI.

    Examples with a NaN outcome (invalid judgments) are left out, as in the win rate.
    """
    y = np.asarray(outcome, float)
    diff = np.asarray(student_len, float) - np.asarray(teacher_len, float)
    keep = ~np.isnan(y)
    y, diff = y[keep], diff[keep]
    if len(y) < 2:
        return None, None
    sd = float(np.std(diff, ddof=1))
    x = np.tanh(diff / sd) if sd > 0 else np.zeros_like(diff)
    # The fit sees the data through its distinct (outcome, x) pairs: resampling the examples
    # is drawing how many of each pair a replicate holds (a multinomial over the pairs, the same
    # law as resampling positions), so a replicate costs the number of pairs, not of examples.
    pairs, inverse = np.unique(np.stack([y, x], 1), axis=0, return_inverse=True)
    size = np.bincount(np.ravel(inverse), minlength=len(pairs)).astype(float)
    fitted, beta = _lc_fit(pairs[:, 0], pairs[:, 1], size)
    point = float(fitted[0])
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    block = max(1, min(n_boot, 2_000_000 // len(pairs)))
    for lo in range(0, n_boot, block):
        counts = rng.multinomial(len(y), size / len(y), size=min(block, n_boot - lo))
        reps[lo:lo + len(counts)] = _lc_fit(pairs[:, 0], pairs[:, 1], counts, start=beta[0])[0]
    tail = (1.0 - confidence) / 2.0
    return point, (float(np.quantile(reps, tail)), float(np.quantile(reps, 1.0 - tail)))


def agreement(judged: np.ndarray, human: Sequence[str | None]) -> dict[str, Any] | None:
    """Agreement of the judge's per-example verdict with a person's, and Cohen's kappa.

    The judge's verdict of an example is ``student`` above ½, ``teacher`` below, ``tie`` at ½;
    examples nobody labelled, or whose judgment was invalid, are left out.
    """
    from sklearn.metrics import cohen_kappa_score

    pairs = [(_category(v), h.strip().lower()) for v, h in zip(judged, human, strict=True)
             if h is not None and str(h).strip() and not np.isnan(v)]
    if not pairs:
        return None
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    rate = float(np.mean([x == y for x, y in pairs]))
    kappa = float(cohen_kappa_score(a, b)) if len(set(a) | set(b)) > 1 else None
    if kappa is not None and math.isnan(kappa):
        kappa = None
    return {"n": len(pairs), "rate": rate, "kappa": kappa}


def _category(value: float) -> str:
    return "student" if value > 0.5 else ("teacher" if value < 0.5 else "tie")


@dataclass(frozen=True)
class JudgeHealth:
    """The figures that say whether a judge can be trusted on this run."""

    n: int
    win_rate: float | None
    lc_win_rate: float | None
    lc_ci: tuple[float, float] | None
    consistency: float | None
    first_preferred: float | None
    longer_preferred: float | None
    invalid_rate: float | None
    agreement: dict[str, Any] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def pairwise_health(j: PairwiseJudgments, student_len: np.ndarray, teacher_len: np.ndarray, *,
                    human: Sequence[str | None] | None = None, confidence: float = 0.90,
                    seed: int = 0) -> JudgeHealth:
    """Every health figure of a pairwise judge over one run's judgments."""
    values = j.values()
    valid = ~np.isnan(values)
    lc, lc_ci = length_controlled(values, student_len, teacher_len, confidence=confidence,
                                  seed=seed)
    requests = j.requests
    return JudgeHealth(
        n=int(valid.sum()),
        win_rate=float(values[valid].mean()) if valid.any() else None,
        lc_win_rate=lc, lc_ci=lc_ci,
        consistency=consistency(j), first_preferred=first_preferred(j),
        longer_preferred=longer_preferred(j, student_len, teacher_len),
        invalid_rate=j.invalid() / requests if requests else None,
        agreement=agreement(values, human) if human is not None else None,
    )


# --------------------------------------------------------------------------- asking the judge

@dataclass(frozen=True)
class JudgeRequest:
    """One judgment to ask: an example, the order (or the answer, pointwise) and its text."""

    key: str  # digest of everything that decides the verdict; the store's key
    example: str
    order: str  # student_first | teacher_first (pairwise); student | teacher (pointwise)
    text: str


def build_requests(judge: Any, ids: Sequence[str], fields: Sequence[Mapping[str, Any]],
                   student: Sequence[str], teacher: Sequence[str], *, fingerprint: str,
                   seed: int = 0) -> list[JudgeRequest]:
    """Every judgment of ``judge`` (a :class:`~harness.spec_types.JudgeSpec`) over a run.

    ``fields`` holds per example what the template may name beside the answers: ``prompt``,
    ``reference`` and the example's plain fields. The key digests the judge's fingerprint, the
    prompt file's sha256, the mode, the verdict pattern, the order and the text shown, so a
    changed student answer is a new key and an unchanged one is read back from the store.
    """
    from harness.cache import key_digest

    # One digest of what every judgment shares, then per judgment the order and the text shown:
    # the same key material as one canonical JSON of all of it, at a fraction of the cost.
    base = key_digest({"judge": fingerprint, "prompt_sha256": judge.prompt_sha256,
                       "mode": judge.mode, "verdict": judge.verdict})

    def key(order: str, text: str) -> str:
        return hashlib.sha256(f"{base}\x00{order}\x00{text}".encode()).hexdigest()

    out: list[JudgeRequest] = []
    if judge.mode == "pointwise":
        for ex, f, s, t in zip(ids, fields, student, teacher, strict=True):
            for who, answer in (("student", s), ("teacher", t)):
                text = render(judge.prompt, {**f, "answer": answer})
                out.append(JudgeRequest(key(who, text), ex, who, text))
        return out
    plan = orders(ids, swap=judge.swap, seed=seed)
    for ex, f, s, t, example_orders in zip(ids, fields, student, teacher, plan, strict=True):
        for order in example_orders:
            a, b = (s, t) if order == STUDENT_FIRST else (t, s)
            text = render(judge.prompt, {**f, "answer_a": a, "answer_b": b})
            out.append(JudgeRequest(key(order, text), ex, order, text))
    return out


@dataclass(frozen=True)
class Asked:
    """The judge's raw answers to a run's requests, and what they cost this run."""

    answers: dict[str, Any]  # request key -> harness.cache.Answer
    sent_keys: frozenset[str]  # requests this run sent (or judgments a local judge computed)
    cached: int  # judgments read from the store

    @property
    def sent(self) -> int:
        return len(self.sent_keys)


def ask(model: Any, requests: Sequence[JudgeRequest], store: Any, *,
        progress: Any = None) -> Asked:
    """The answers to ``requests``: from ``store`` where it has them, else from ``model``.

    Only the missing requests go to the model, as one data set whose ids are the request keys;
    each answer is put in the store as soon as the model returns (an endpoint judge also keeps
    every answer in its own per-example store as it arrives, so a killed run resumes).
    """
    from harness.cache import Answer
    from harness.data import Dataset

    unique = list({r.key: r for r in requests}.values())
    have = store.read([r.key for r in unique]) if store is not None else {}
    missing = [r for r in unique if r.key not in have]
    answers = dict(have)
    sent: set[str] = set()
    if missing:
        digest = hashlib.sha256("\n".join(r.key for r in missing).encode()).hexdigest()
        data = Dataset(path=Path("judge-requests"), sha256=digest,
                       ids=tuple(r.key for r in missing), inputs=tuple(r.text for r in missing),
                       labels=None, records=[{"id": r.key} for r in missing])
        pred = model.predict(data, (), progress)
        outputs = pred.outputs or ()
        # an endpoint judge resumed from its own store answers some requests without asking
        from_cache = pred.cached if pred.cached is not None else np.zeros(len(missing), bool)
        sent = {r.key for r, c in zip(missing, from_cache, strict=True) if not c}
        for i, r in enumerate(missing):
            answer = Answer(text=str(outputs[i]) if i < len(outputs) else "",
                            finish_reason=(pred.finish_reasons[i] if pred.finish_reasons
                                           else "unknown"),
                            input_tokens=_token(pred.input_tokens, i),
                            output_tokens=_token(pred.output_tokens, i))
            answers[r.key] = answer
            if store is not None:
                store.put(r.key, answer)
        if store is not None:
            store.close()
    return Asked(answers=answers, sent_keys=frozenset(sent), cached=len(unique) - len(sent))


def saved_answers(path: Path, requests: Sequence[JudgeRequest]) -> Asked:
    """A ``type: predictions`` judge: its saved answers, one JSONL line per example and order,
    ``{"id": …, "order": "student_first"|"teacher_first", "output": …}`` (pointwise
    ``{"id": …, "answer": "student"|"teacher", "output": …}``). A judgment without a line is
    an invalid judgment (counted, as a judge's answer without a verdict); nothing is asked."""
    import json

    from harness.cache import Answer
    from harness.errors import DataError
    from harness.paths import display_path

    kinds = (*ORDERS, "student", "teacher")
    texts: dict[tuple[str, str], str] = {}
    for lineno, line in enumerate(Path(path).read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"line {lineno}: not JSON ({exc.msg})", file=display_path(path)) from None
        which = rec.get("order", rec.get("answer")) if isinstance(rec, dict) else None
        if (not isinstance(rec, dict) or not isinstance(rec.get("id"), str) or which not in kinds
                or not isinstance(rec.get("output"), str)):
            raise DataError(f"line {lineno}: expected {{\"id\", \"order\": student_first | "
                            "teacher_first (or \"answer\": student | teacher), \"output\"}}",
                            file=display_path(path))
        texts[(rec["id"], which)] = rec["output"]
    answers = {r.key: Answer(text=texts[(r.example, r.order)]) for r in requests
               if (r.example, r.order) in texts}
    return Asked(answers=answers, sent_keys=frozenset(), cached=0)


def _token(counts: Any, i: int) -> int | None:
    if counts is None:
        return None
    value = counts[i]
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


# --------------------------------------------------------------------------- one judge, one run

@dataclass(frozen=True)
class JudgeResult:
    """One judge over one run: per-example values, health, usage and cost.

    ``student`` / ``teacher`` are the per-example values of ``judge:<name>`` (NaN where a
    judgment was invalid): pairwise, the student's outcome and 0.5 for the teacher; pointwise,
    each answer's score.
    """

    name: str
    mode: str
    ids: tuple[str, ...]
    student: np.ndarray
    teacher: np.ndarray
    health: JudgeHealth
    requests: int  # sent by this run
    cached: int  # read from the store
    judgments: int  # every judgment behind the report
    usage: dict[str, int]
    usd: float | None  # every judgment priced (what an empty cache would cost)
    usd_this_run: float | None  # only the requests this run sent
    self_preference: bool = False
    #: per example: the raw verdicts, "order: verdict" (for failing checks and the page)
    verdicts: dict[str, list[str]] = field(default_factory=dict)
    invalid_examples: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def figures(self) -> dict[str, float]:
        """The gateable health figures by metric name (``judge_<figure>:<name>``)."""
        h = self.health
        named = {"judge_consistency": h.consistency, "judge_first_preferred": h.first_preferred,
                 "judge_longer_preferred": h.longer_preferred,
                 "judge_invalid_rate": h.invalid_rate, "judge_lc": h.lc_win_rate,
                 "judge_agreement": (h.agreement or {}).get("rate")}
        return {f"{k}:{self.name}": float(v) for k, v in named.items() if v is not None}

    def to_report(self) -> dict[str, Any]:
        """The report's ``judges.<name>`` block (DESIGN)."""
        h = self.health
        return {"mode": self.mode, "n": h.n, "win_rate": h.win_rate,
                "lc_win_rate": h.lc_win_rate, "lc_ci": list(h.lc_ci) if h.lc_ci else None,
                "consistency": h.consistency, "first_preferred": h.first_preferred,
                "longer_preferred": h.longer_preferred, "invalid_rate": h.invalid_rate,
                "agreement": h.agreement, "self_preference": self.self_preference,
                "requests": self.requests, "cached": self.cached, "judgments": self.judgments,
                "usage": dict(self.usage), "usd": self.usd, "usd_this_run": self.usd_this_run,
                "invalid_examples": list(self.invalid_examples[:20]),
                "verdicts": self.worst_verdicts(), "notes": list(self.notes)}

    def worst_verdicts(self, limit: int = 100) -> dict[str, list[str]]:
        """The judge's verdicts on the examples where the student fared worst (lost, or scored
        below the teacher; invalid judgments first), so a failing check can show them."""
        gap = self.student - self.teacher
        order = sorted(range(len(self.ids)),
                       key=lambda i: (not np.isnan(gap[i]), gap[i] if not np.isnan(gap[i]) else 0))
        out = {}
        for i in order[:limit]:
            if not np.isnan(gap[i]) and gap[i] >= 0:
                break
            out[self.ids[i]] = list(self.verdicts.get(self.ids[i], []))
        return out


def judge_run(judge: Any, requests: Sequence[JudgeRequest], asked: Asked, *,
              ids: Sequence[str], student: Sequence[str], teacher: Sequence[str],
              human: Sequence[str | None] | None = None, prices: Any = None,
              self_preference: bool = False, confidence: float = 0.90,
              seed: int = 0) -> JudgeResult:
    """Turn the judge's answers into per-example values and its health figures."""
    parsed: dict[tuple[str, str], str | None] = {}
    verdicts: dict[str, list[str]] = {}
    for r in requests:
        answer = asked.answers.get(r.key)
        v = parse_verdict(answer.text if answer is not None else None, judge.verdict)
        parsed[(r.example, r.order)] = v
        verdicts.setdefault(r.example, []).append(f"{r.order}: {v if v is not None else 'invalid'}")
    s_len = np.array([len(t) for t in student], float)
    t_len = np.array([len(t) for t in teacher], float)
    if judge.mode == "pointwise":
        s_vals = np.array([pointwise_value(parsed.get((i, "student")), judge.scale) for i in ids])
        t_vals = np.array([pointwise_value(parsed.get((i, "teacher")), judge.scale) for i in ids])
        both = ~np.isnan(s_vals) & ~np.isnan(t_vals)
        requests_n = len(requests)
        invalid = int(np.isnan(s_vals).sum() + np.isnan(t_vals).sum())
        health = JudgeHealth(n=int(both.sum()),
                             win_rate=float(np.mean(s_vals[both] > t_vals[both])
                                            + 0.5 * np.mean(s_vals[both] == t_vals[both]))
                             if both.any() else None,
                             lc_win_rate=None, lc_ci=None, consistency=None,
                             first_preferred=None, longer_preferred=None,
                             invalid_rate=invalid / requests_n if requests_n else None)
        bad = ~both
    else:
        plan = orders(ids, swap=judge.swap, seed=seed)
        j = collect_pairwise(ids, plan, parsed)
        s_vals = j.values()
        t_vals = np.where(np.isnan(s_vals), np.nan, 0.5)
        health = pairwise_health(j, s_len, t_len, human=human, confidence=confidence, seed=seed)
        bad = np.isnan(s_vals)
    usage = _usage(requests, asked)
    return JudgeResult(
        name=judge.name, mode=judge.mode, ids=tuple(ids), student=s_vals, teacher=t_vals,
        health=health, requests=asked.sent, cached=asked.cached, judgments=len(requests),
        usage=usage, usd=_price(prices, usage["input_tokens"], usage["output_tokens"]),
        usd_this_run=_price(prices, usage["input_tokens_this_run"],
                            usage["output_tokens_this_run"]),
        self_preference=self_preference, verdicts=verdicts,
        invalid_examples=tuple(i for i, b in zip(ids, bad, strict=True) if b),
        notes=_notes(judge, health, self_preference))


def _usage(requests: Sequence[JudgeRequest], asked: Asked) -> dict[str, int]:
    """Tokens over every judgment behind the report, and over this run's requests alone."""
    total_in = total_out = run_in = run_out = 0
    for key in {r.key for r in requests}:
        a = asked.answers.get(key)
        if a is None:
            continue
        i, o = a.input_tokens or 0, a.output_tokens or 0
        total_in, total_out = total_in + i, total_out + o
        if key in asked.sent_keys:
            run_in, run_out = run_in + i, run_out + o
    return {"input_tokens": total_in, "output_tokens": total_out,
            "input_tokens_this_run": run_in, "output_tokens_this_run": run_out}


def _price(prices: Any, input_tokens: int, output_tokens: int) -> float | None:
    if prices is None:
        return None
    return float(prices.usd(input_tokens, output_tokens))


def _notes(judge: Any, health: JudgeHealth, self_preference: bool) -> tuple[str, ...]:
    notes = []
    if self_preference:
        notes.append(f"judge {judge.name} is the teacher's own model: it may prefer its own "
                     "answers (self-preference); use another model, or read its win rate as "
                     "an upper bound on the teacher's side")
    if health.invalid_rate is not None and health.invalid_rate > 0.05:
        notes.append(f"judge {judge.name}: {health.invalid_rate:.0%} of judgments matched no "
                     f"verdict ({judge.verdict}); check the prompt asks for that format")
    if health.consistency is not None and health.consistency < 0.6:
        notes.append(f"judge {judge.name}: only {health.consistency:.0%} of examples got the "
                     "same verdict in both orders; its verdicts are close to position noise")
    return tuple(notes)


# --------------------------------------------------------------------------- the step

@dataclass(frozen=True)
class JudgesOutcome:
    """Every judge of a suite over one run (empty when the suite has none)."""

    results: dict[str, JudgeResult] = field(default_factory=dict)

    def figures(self) -> dict[str, float]:
        """Every judge's gateable health figures, by metric name."""
        out: dict[str, float] = {}
        for r in self.results.values():
            out.update(r.figures())
        return out

    def student_values(self) -> dict[str, np.ndarray]:
        return {name: r.student for name, r in self.results.items()}

    def teacher_values(self) -> dict[str, np.ndarray]:
        return {name: r.teacher for name, r in self.results.items()}

    def section(self) -> dict[str, Any] | None:
        """The report's ``judges`` block."""
        if not self.results:
            return None
        return {name: r.to_report() for name, r in self.results.items()}

    def notes(self) -> list[str]:
        return [n for r in self.results.values() for n in r.notes]

    def audit(self, audit: Mapping[str, Any], limit: int = 10) -> dict[str, Any]:
        """The teacher audit with each pointwise judge's lowest-scored teacher answers among
        its suspects (bad teacher outputs found without labels): ``judge_suspects`` lists
        them with their scores; their ids join ``suspect_ids``."""
        found = []
        for r in self.results.values():
            if r.mode != "pointwise":
                continue
            scored = [(float(v), i) for v, i in zip(r.teacher, r.ids, strict=True)
                      if not np.isnan(v)]
            for score, ex in sorted(scored)[:limit]:
                found.append({"id": ex, "judge": r.name, "score": score})
        if not found:
            return dict(audit)
        ids = list(audit.get("suspect_ids") or [])
        ids += [f["id"] for f in found if f["id"] not in ids]
        return {**audit, "suspect_ids": ids, "judge_suspects": found}


def store_for(judge: Any, fingerprint: str, cache_dir: Path | None) -> Any:
    """The per-judgment store of ``judge`` (None when the cache is off)."""
    if cache_dir is None:
        return None
    from harness.cache import AnswerStore

    return AnswerStore(cache_dir, f"judge-{judge.name}-{fingerprint[:32]}",
                       {"kind": "judge", "fingerprint": fingerprint,
                        "prompt_sha256": judge.prompt_sha256, "mode": judge.mode,
                        "verdict": judge.verdict})


def judge_inputs(data: Any, judge: Any) -> list[dict[str, Any]]:
    """Per example, what the judge's template names: ``prompt`` (what the models were asked),
    ``reference`` (the first reference, when the data has them) and the example's plain
    fields (only those the template names, read column by column)."""
    from harness.data import prompt_fields

    names = set(prompt_fields(judge.prompt, file=str(judge.prompt_path), field=judge.field))
    columns: dict[str, Any] = {}
    if "prompt" in names:
        columns["prompt"] = data.texts()
    if "reference" in names and data.references is not None:
        columns["reference"] = [r[0] if r else "" for r in data.references]
    for name in names - {"prompt", "reference", "answer", "answer_a", "answer_b"}:
        col = data.column(name)
        columns[name] = [None] * len(data) if col is None else col
    return [{k: v[i] for k, v in columns.items()} for i in range(len(data))]


def judges_step(spec: Any, data: Any, teacher: Any, student: Any, options: Any, *,
                models: Any = None) -> JudgesOutcome:
    """Ask every judge of ``spec`` about the student's and the teacher's answers over ``data``.

    ``teacher`` / ``student`` are the models' runs (their eval predictions). A judge whose
    model is the teacher's (same fingerprint, or the same served model name) gets a
    self-preference note. ``models`` maps a judge name to a ready adapter (tests); otherwise
    each judge's model is built from its spec and closed afterwards.
    """
    if not spec.judges:
        return JudgesOutcome()
    from harness.models import load_model
    from harness.progress import make_progress

    ids = [str(i) for i in data.ids]
    s_texts = list(student.predictions.outputs or ())
    t_texts = list(teacher.predictions.outputs or ())
    results: dict[str, JudgeResult] = {}
    for name, judge in spec.judges.items():
        model = (models or {}).get(name) or load_model(judge.model, f"judge {name}", options)
        try:
            fp = model.fingerprint()
            requests = build_requests(judge, ids, judge_inputs(data, judge), s_texts, t_texts,
                                      fingerprint=fp, seed=options.seed)
            progress = make_progress(f"judge {name}",
                                     enabled=None if options.progress else False)
            asked = (saved_answers(judge.model.local_path, requests) if model.precomputed
                     else ask(model, requests, store_for(judge, fp, options.cache_dir),
                              progress=progress))
            human = None
            if judge.labels_field is not None:
                column = data.column(judge.labels_field)
                human = [None if v is None else str(v) for v in
                         (column if column is not None else [None] * len(ids))]
            results[name] = judge_run(
                judge, requests, asked, ids=ids, student=s_texts, teacher=t_texts, human=human,
                prices=judge.model.prices, seed=options.seed,
                self_preference=_same_model(judge.model, model, teacher.model))
        finally:
            if models is None or name not in models:
                model.close()
    return JudgesOutcome(results)


def _same_model(judge_spec: Any, judge_model: Any, teacher_model: Any) -> bool:
    """Whether the judge is the teacher: same fingerprint, or the same served model name."""
    try:
        if judge_model.fingerprint() == teacher_model.fingerprint():
            return True
    except Exception:  # a fingerprint that cannot be computed proves nothing either way
        pass
    served = (judge_spec.raw or {}).get("model")
    teacher_served = (teacher_model.spec.raw or {}).get("model")
    return bool(served) and served == teacher_served


# --------------------------------------------------------------------------- the dry run

def plan_judges(spec: Any, data: Any, teacher: Sequence[str] | None,
                student: Sequence[str] | None, options: Any) -> list[dict[str, Any]]:
    """What each judge of ``spec`` would be asked by a run: judgments, the ones its store
    already has, a token estimate and its price. Asks nothing.

    With both models' answers known (prediction files, or outputs in the cache) the requests
    are built exactly and looked up in the judge's store; otherwise every judgment counts as
    a request and each answer's length is estimated at its model's ``max_new_tokens``.
    """
    from harness.models import load_model
    from harness.models.openai_compat import CHARS_PER_TOKEN

    rows: list[dict[str, Any]] = []
    ids = [str(i) for i in data.ids]
    for name, judge in spec.judges.items():
        per_example = 1 if (judge.mode == "pairwise" and not judge.swap) else 2
        model = load_model(judge.model, f"judge {name}", options)
        try:
            gen = judge.model.generation
            max_out = gen.max_new_tokens if gen is not None else 0
            if teacher is not None and student is not None:
                requests = build_requests(judge, ids, judge_inputs(data, judge), student,
                                          teacher, fingerprint=model.fingerprint(),
                                          seed=options.seed)
                store = store_for(judge, model.fingerprint(), options.cache_dir)
                have = set(store.read([r.key for r in requests])) if store is not None else set()
                todo = [r for r in requests if r.key not in have]
                chars = sum(len(r.text) for r in todo)
                n_todo, known = len(todo), True
            else:
                answer_chars = 2 * int(CHARS_PER_TOKEN) * max(
                    (m.generation.max_new_tokens if m.generation else 0)
                    for m in (spec.teacher, spec.student))
                chars = per_example * sum(len(judge.prompt) + len(p) + answer_chars
                                          for p in data.texts())
                n_todo, have, known = per_example * len(ids), set(), False
            input_tokens = int(math.ceil(chars / CHARS_PER_TOKEN))
            output_tokens = n_todo * max_out
            prices = judge.model.prices
            rows.append({
                "role": f"judge {name}", "type": judge.model.type,
                "model": (judge.model.raw or {}).get("model"),
                "api": (judge.model.raw or {}).get("api", "chat"),
                "examples": per_example * len(ids), "requests": n_todo, "cached": len(have),
                "input_tokens_estimate": input_tokens, "output_tokens_max": output_tokens,
                "usd_estimate": (float(prices.usd(input_tokens, output_tokens))
                                 if prices is not None else None),
                "answers_known": known})
        finally:
            model.close()
    return rows
