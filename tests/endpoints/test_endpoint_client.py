"""``type: openai`` against a server of our own that answers with fixed, chosen text and injects
the faults a real server has: 429 with Retry-After, 503, answers slower than the timeout,
malformed JSON, dropped connections, refusals, and a server that is gone."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from endpoint_helpers import dataset, endpoint_spec, files_containing
from fake_openai import FINGERPRINT, SERVED_MODEL, answer_for, usage_for

from harness.errors import ModelError, SpecError
from harness.models import load_model
from harness.models.openai_compat import (
    OpenAICompatModel,
    cut_at_stop,
    label_matcher,
)
from harness.options import Options
from harness.outputs import INVALID_LABEL

KEY = "sk-test-0123456789abcdef-not-a-real-key"
FAULTS = (None, "429", "503", "slow", "malformed", "drop")


def prompts(n: int) -> list[str]:
    return [f"question {i} about the weather" for i in range(n)]


def index_of(prompt: str) -> int:
    return int(prompt.split()[1])


def model(spec, tmp_path: Path, cache: bool = True) -> OpenAICompatModel:
    m = load_model(spec, "teacher", Options(cache_dir=tmp_path / "cache" if cache else None))
    assert isinstance(m, OpenAICompatModel)
    return m


def test_every_fault_is_retried_and_every_example_answered_once(fake_openai, tmp_path, monkeypatch):
    # Each example meets one kind of fault on its first attempt (the sixth kind: none).
    server = fake_openai(lambda p, attempt: FAULTS[index_of(p) % 6] if attempt == 1 else None,
                         api_key=KEY, slow_s=2.5)
    monkeypatch.setenv("ENDPOINT_TEST_KEY", KEY)
    spec = endpoint_spec(server.base_url, api_key_env="ENDPOINT_TEST_KEY", timeout_s=1.0,
                         retries=3, max_connections=8)
    data = dataset(prompts(36))
    m = model(spec, tmp_path)
    pred = m.predict(data, [])

    assert pred.outputs == tuple(answer_for(p) for p in prompts(36))
    assert pred.usage() == {"requests": 36, "cached": 0,
                            "input_tokens": sum(usage_for(p)[0] for p in prompts(36)),
                            "output_tokens": sum(usage_for(p)[1] for p in prompts(36))}
    assert pred.served == {"model": SERVED_MODEL, "system_fingerprint": FINGERPRINT}
    assert set(pred.finish_reasons) == {"stop"}
    assert pred.latency_s is not None and (pred.latency_s > 0).all()
    # Every faulty example was asked again, and only as often as it had to be.
    for p in prompts(36):
        assert server.requests[p] == (1 if FAULTS[index_of(p) % 6] is None else 2), p
    # The store holds each example exactly once; the key is in no file the run wrote.
    lines = m.store(data).path.read_text("utf-8").splitlines()
    assert sorted(json.loads(x)["key"] for x in lines[1:]) == sorted(data.ids)
    assert files_containing(tmp_path, KEY) == []
    # Explicit settings on every request: servers' defaults differ.
    assert all(b["max_tokens"] == 16 and b["temperature"] == 0.0 and b["seed"] == 0
               for b in server.bodies)


def test_retry_after_is_honoured(fake_openai, tmp_path):
    server = fake_openai(lambda p, a: "429" if a == 1 else None, retry_after="0.6")
    spec = endpoint_spec(server.base_url, retries=2, max_connections=2)
    model(spec, tmp_path, cache=False).predict(dataset(prompts(2)), [])
    for p in prompts(2):
        first, second = server.times[p]
        assert second - first >= 0.55  # the server's 0.6 s, not the client's own 0.5 s backoff


def test_a_cached_run_asks_nothing_and_needs_neither_server_nor_key(fake_openai, tmp_path,
                                                                     monkeypatch):
    server = fake_openai()
    monkeypatch.setenv("ENDPOINT_TEST_KEY", KEY)
    spec = endpoint_spec(server.base_url, api_key_env="ENDPOINT_TEST_KEY")
    data = dataset(prompts(5))
    first = model(spec, tmp_path).predict(data, [])
    server.stop()
    monkeypatch.delenv("ENDPOINT_TEST_KEY")
    again = model(spec, tmp_path).predict(data, [])
    assert again.outputs == first.outputs
    # Tokens over every answer behind the predictions; none of them requested by this run.
    assert again.usage() == {**first.usage(), "requests": 0, "cached": 5}
    assert first.usage()["requests"] == 5 and first.usage()["cached"] == 0
    assert again.latency_s.tolist() == first.latency_s.tolist()


def test_a_refused_request_ends_the_run_at_once_with_the_servers_message(fake_openai, tmp_path,
                                                                         monkeypatch):
    server = fake_openai(lambda p, a: "404" if index_of(p) == 3 else None)
    spec = endpoint_spec(server.base_url, retries=5, max_connections=1)
    with pytest.raises(ModelError) as err:
        model(spec, tmp_path).predict(dataset(prompts(10)), [])
    msg = str(err.value)
    assert "the server refused a request: HTTP 404" in msg and "refused with 404" in msg
    assert "the 3 answered are kept in the cache" in msg and "\n" not in msg
    assert server.requests[prompts(10)[3]] == 1  # a 4xx is never retried
    assert sum(server.requests.values()) == 4  # and nothing after it was asked


def test_a_wrong_key_is_refused_and_never_repeated(fake_openai, tmp_path, monkeypatch):
    server = fake_openai(api_key="sk-the-right-one")
    monkeypatch.setenv("ENDPOINT_TEST_KEY", KEY)
    spec = endpoint_spec(server.base_url, api_key_env="ENDPOINT_TEST_KEY")
    with pytest.raises(ModelError) as err:
        model(spec, tmp_path).predict(dataset(prompts(4)), [])
    assert "HTTP 401" in str(err.value) and "Incorrect API key provided: ***" in str(err.value)
    assert KEY not in str(err.value)
    assert files_containing(tmp_path, KEY) == []


def test_a_missing_key_variable_is_a_clear_error(fake_openai, tmp_path, monkeypatch):
    monkeypatch.delenv("ENDPOINT_TEST_KEY", raising=False)
    spec = endpoint_spec(fake_openai().base_url, api_key_env="ENDPOINT_TEST_KEY")
    with pytest.raises(ModelError, match="environment variable ENDPOINT_TEST_KEY .api_key_env. is "
                                         "not set"):
        model(spec, tmp_path).predict(dataset(prompts(2)), [])
    spec = endpoint_spec("", base_url_env="ENDPOINT_TEST_URL")
    monkeypatch.delenv("ENDPOINT_TEST_URL", raising=False)
    with pytest.raises(ModelError, match="ENDPOINT_TEST_URL .base_url_env. is not set"):
        model(spec, tmp_path).predict(dataset(prompts(2)), [])


def test_retries_spent_end_the_run_and_a_rerun_asks_only_for_the_missing(fake_openai, tmp_path):
    down = {"on": True}
    server = fake_openai(lambda p, a: "503" if down["on"] and index_of(p) >= 12 else None)
    spec = endpoint_spec(server.base_url, retries=1, max_connections=1)
    data = dataset(prompts(20))
    with pytest.raises(ModelError) as err:
        model(spec, tmp_path).predict(data, [])
    assert str(err.value) == (
        "suites/endpoint.yaml: teacher: 8 of 20 examples have no answer after 1 "
        "retries (last error: HTTP 503: Error code: 503 - {'error': {'message': 'overloaded'}}); "
        "the 12 answered are kept in the cache and a rerun asks only for the 8 missing")
    asked = dict(server.requests)
    down["on"] = False
    pred = model(spec, tmp_path).predict(data, [])
    assert pred.outputs == tuple(answer_for(p) for p in prompts(20))
    for p in prompts(12):
        assert server.requests[p] == asked[p] == 1  # answered ones are not asked again
    assert pred.usage()["input_tokens"] == sum(usage_for(p)[0] for p in prompts(20))


def test_an_outage_ends_the_run_in_well_under_two_minutes(tmp_path):
    """Server gone (a closed port), ``retries: 6, timeout_s: 2``: one line, exit 2 in the CLI."""
    from endpoint_helpers import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    spec = endpoint_spec(url, retries=6, timeout_s=2, max_connections=8)
    start = time.monotonic()
    with pytest.raises(ModelError) as err:
        model(spec, tmp_path).predict(dataset(prompts(50)), [])
    elapsed = time.monotonic() - start
    print(f"outage: ModelError after {elapsed:.1f} s")
    assert elapsed < 120
    assert "50 of 50 examples have no answer after 6 retries (last error: APIConnectionError" in \
        str(err.value)
    assert "\n" not in str(err.value)


def test_a_killed_run_resumes_without_asking_again(fake_openai, tmp_path):
    server = fake_openai(delay_s=0.03)  # ~2 s of answers: time to kill the run in the middle
    n = 150
    cache = tmp_path / "cache"
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from endpoint_helpers import dataset, endpoint_spec
from harness.models.openai_compat import OpenAICompatModel
spec = endpoint_spec({server.base_url!r}, max_connections=2)
data = dataset([f"question {{i}} about the weather" for i in range({n})])
OpenAICompatModel(spec, "teacher", cache_dir=Path({str(cache)!r})).predict(data, [])
print("finished")
"""
    spec = endpoint_spec(server.base_url, max_connections=2)
    data = dataset(prompts(n))
    store = model(spec, tmp_path).store(data)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if store.path.exists() and store.path.read_bytes().count(b"\n") > n // 3:
            break
        assert child.poll() is None, "the child run ended before it was killed"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    kept = store.read()
    assert n // 3 <= len(kept) < n
    asked_before = sum(server.requests.values())

    pred = model(spec, tmp_path).predict(data, [])
    assert pred.outputs == tuple(answer_for(p) for p in prompts(n))
    for ex_id, p in zip(data.ids, prompts(n), strict=True):
        if ex_id in kept:
            assert server.requests[p] == 1, p  # answered before the kill: never asked again
    # Only what was in flight at the kill (at most max_connections) was asked twice.
    assert sum(server.requests.values()) - n <= 2
    assert sum(server.requests.values()) - asked_before == n - len(kept)


def test_a_torn_last_line_is_dropped_and_asked_again(fake_openai, tmp_path):
    server = fake_openai()
    spec = endpoint_spec(server.base_url)
    data = dataset(prompts(6))
    m = model(spec, tmp_path)
    m.predict(data, [])
    path = m.store(data).path
    lines = path.read_bytes().split(b"\n")
    # The process died while writing the last answer: half of that line is on disk.
    path.write_bytes(b"\n".join(lines[:6]) + b"\n" + lines[6][: len(lines[6]) // 2])
    assert len(m.store(data).read()) == 5
    before = dict(server.requests)
    pred = model(spec, tmp_path).predict(data, [])
    assert pred.outputs == tuple(answer_for(p) for p in prompts(6))
    assert sum(server.requests.values()) - sum(before.values()) == 1
    assert len(m.store(data).read()) == 6
    assert all(json.loads(x) for x in path.read_text("utf-8").splitlines())  # no spoiled line


def test_classification_answers_are_matched_to_labels(fake_openai, tmp_path):
    answers = {"a": "Fresh", "b": "  rotten\n", "c": "positive", "d": "meh", "e": "FRESH  "}
    server = fake_openai(labels=answers)
    spec = endpoint_spec(server.base_url, task="classification", labels_map={"Positive": "fresh"})
    data = dataset(list(answers))
    pred = model(spec, tmp_path).predict(data, ["fresh", "rotten"])
    assert pred.labels == ("fresh", "rotten", "fresh", INVALID_LABEL, "fresh")
    assert pred.outputs == tuple(answers.values()) and pred.scores is None  # as the model wrote
    assert pred.usage()["requests"] == 5
    with pytest.raises(SpecError, match="labels_map sends 'Positive' to 'good'"):
        model(endpoint_spec(server.base_url, task="classification",
                            labels_map={"Positive": "good"}), tmp_path).predict(data, ["fresh"])


def test_label_matching_and_stop_cutting():
    match = label_matcher(["Fresh", "rotten"], {"thumbs up": "Fresh"})
    assert [match(t) for t in ("fresh", " FRESH ", "Thumbs   Up", "rotten.", "")] == \
        ["Fresh", "Fresh", "Fresh", "rotten", INVALID_LABEL]
    # Tolerant in form: punctuation, quotes, brackets, emphasis, a leading Answer:/Label:.
    match = label_matcher(["fresh", "rotten", "not_sure", "-1"], {"positive": "fresh"})
    forms = {"**Fresh**": "fresh", "FRESH!": "fresh", "Answer: 'rotten'.": "rotten",
             "label - Fresh": "fresh", "(rotten)": "rotten", "“Positive”": "fresh",
             "*Answer:* __not_sure__": "not_sure", "-1": "-1", "`-1`": "-1",
             # Strict about meaning: two labels, a sentence, an unmapped word.
             "fresh or rotten": INVALID_LABEL, "I think it is fresh": INVALID_LABEL,
             "negative": INVALID_LABEL, "1": INVALID_LABEL, "***": INVALID_LABEL}
    assert {t: match(t) for t in forms} == forms
    by_pattern = label_matcher(["fresh", "rotten"], None, r"Label:\s*(\w+)")
    assert by_pattern("It is upbeat. Label: Fresh") == "fresh"
    assert by_pattern("Label: fresh ... so, Label: FRESH.") == "fresh"  # one label, twice
    assert by_pattern("Label: fresh, no, Label: rotten") == INVALID_LABEL  # two labels
    assert by_pattern("fresh") == INVALID_LABEL  # the pattern is required
    assert label_matcher(["fresh"], None, r"fresh|rotten")("rotten, I mean fresh") == INVALID_LABEL
    assert cut_at_stop("HH AH L OW\nnext", ["\n"]) == "HH AH L OW"
    assert cut_at_stop("a;b.c", [".", ";"]) == "a"
    assert cut_at_stop("no stop here", ["\n"]) == "no stop here"


def test_completions_api_and_stop_strings(fake_openai, tmp_path):
    server = fake_openai()
    spec = endpoint_spec(server.base_url, api="completions", stop=("ABOUT",))
    pred = model(spec, tmp_path).predict(dataset(prompts(3)), [])
    assert pred.outputs == tuple(answer_for(p).split("ABOUT")[0] for p in prompts(3))
    assert all("prompt" in b and b["stop"] == ["ABOUT"] for b in server.bodies)


def test_truncation_is_a_model_outcome_not_an_error(fake_openai, tmp_path):
    server = fake_openai()
    spec = endpoint_spec(server.base_url, max_new_tokens=2)  # every fixed answer is 5 words
    pred = model(spec, tmp_path).predict(dataset(prompts(3)), [])
    assert pred.finish_reasons == ("length",) * 3


def test_fingerprint_is_what_determines_the_answers(tmp_path):
    base = endpoint_spec("http://127.0.0.1:1/v1")
    fp = model(base, tmp_path).fingerprint()
    same = [endpoint_spec("http://10.0.0.9:8000/v1"), endpoint_spec(
        "http://127.0.0.1:1/v1", api_key_env="OTHER", max_connections=99, timeout_s=1, retries=0)]
    for spec in same:
        assert model(spec, tmp_path).fingerprint() == fp
    different = [endpoint_spec("http://127.0.0.1:1/v1", model="other"),
                 endpoint_spec("http://127.0.0.1:1/v1", api="completions"),
                 endpoint_spec("http://127.0.0.1:1/v1", max_new_tokens=17)]
    assert len({model(s, tmp_path).fingerprint() for s in different} | {fp}) == 4
    # What only decodes the answers is not what is asked: it never changes the fingerprint.
    decoding = endpoint_spec("http://127.0.0.1:1/v1", labels_map={"x": "y"},
                             label_pattern=r"label: (\w+)")
    assert model(decoding, tmp_path).fingerprint() == fp
    from dataclasses import replace

    assert model(replace(base, revision="r2"), tmp_path).fingerprint() != fp
    assert model(replace(base, prompt="Q: {text}"), tmp_path).fingerprint() != fp


def test_bad_settings_are_spec_errors(tmp_path):
    with pytest.raises(SpecError, match=r"teacher\.api: expected one of chat, completions"):
        model(endpoint_spec("http://x/v1", api="responses"), tmp_path)
    from dataclasses import replace

    from harness.spec_types import GenerationSettings

    spec = replace(endpoint_spec("http://x/v1", api="completions"),
                   generation=GenerationSettings(system="be brief"))
    with pytest.raises(SpecError, match="a system text needs api: chat"):
        model(spec, tmp_path)
    spec = replace(spec, generation=GenerationSettings(chat=True))
    with pytest.raises(SpecError, match=r"teacher\.generation\.chat: generation.chat: true needs"):
        model(spec, tmp_path)


def test_plan_requests_counts_the_uncached_and_prices_them(fake_openai, tmp_path):
    server = fake_openai(lambda p, a: "400" if index_of(p) == 4 else None)
    spec = endpoint_spec(server.base_url, max_connections=1, max_new_tokens=10,
                         metadata={"usd_per_million_tokens": {"input": 2.0, "output": 8.0}})
    data = dataset(prompts(10))
    m = model(spec, tmp_path)
    with pytest.raises(ModelError):
        m.predict(data, [])
    plan = m.plan_requests(data)
    chars = sum(len(p) for p in prompts(10)[4:])
    assert plan == {"model": "fake-teacher", "api": "chat", "examples": 10, "cached": 4,
                    "requests": 6, "input_tokens_estimate": -(-chars // 4),
                    "output_tokens_max": 60,
                    "usd_estimate": (2.0 * -(-chars // 4) + 8.0 * 60) / 1e6}
    assert sum(server.requests.values()) == 5  # planning asked nothing
    assert m.spec.prices is not None and endpoint_spec("http://x").prices is None


def test_predict_runs_from_a_thread_and_from_inside_a_running_loop(fake_openai, tmp_path):
    server = fake_openai()
    spec = endpoint_spec(server.base_url)
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(
        model(spec, tmp_path, cache=False).predict(dataset(prompts(3)), []).outputs))
    thread.start()
    thread.join(30)

    async def inside() -> object:
        return model(spec, tmp_path, cache=False).predict(dataset(prompts(3)), []).outputs

    got.append(asyncio.run(inside()))
    assert got == [tuple(answer_for(p) for p in prompts(3))] * 2


def test_no_cache_runs_without_a_store(fake_openai, tmp_path):
    server = fake_openai(lambda p, a: "503" if index_of(p) == 1 else None)
    spec = endpoint_spec(server.base_url, retries=0, max_connections=1)
    with pytest.raises(ModelError, match="the prediction cache is off, so a rerun asks for every"):
        model(spec, tmp_path, cache=False).predict(dataset(prompts(3)), [])
    assert not (tmp_path / "cache").exists()


def test_latency_is_the_answering_attempt(fake_openai, tmp_path):
    server = fake_openai(lambda p, a: "slow" if a == 1 else None, slow_s=2.0, delay_s=0.05)
    spec = endpoint_spec(server.base_url, timeout_s=0.5, retries=2)
    pred = model(spec, tmp_path).predict(dataset(prompts(2)), [])
    # The timed-out first attempt and the backoff are not the answer's latency.
    for latency, p in zip(pred.latency_s, prompts(2), strict=True):
        times = server.times[p]
        assert 0.05 <= latency < times[-1] - times[0], (latency, times)


def test_progress_counts_this_runs_requests_with_an_eta(fake_openai, tmp_path):
    import io

    from harness.progress import LineProgress

    server = fake_openai(lambda p, a: "400" if index_of(p) == 6 else None)
    spec = endpoint_spec(server.base_url, max_connections=1)
    data = dataset(prompts(10))
    with pytest.raises(ModelError):
        model(spec, tmp_path).predict(data, [])  # 6 answered, kept
    server.faults = lambda p, a: None
    calls: list[tuple[int, int]] = []
    model(spec, tmp_path).predict(data, [], progress=lambda done, total: calls.append((done, total)))
    # The cached answers are no work: the rate is requests/s of this run, the ETA follows it.
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]

    class TTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    now = [0.0]
    out = TTY()
    line = LineProgress("teacher", out, clock=lambda: now[0])
    # Through the cache, an endpoint's progress counts requests.
    from harness.cache import predict_cached

    predict_cached(model(spec, tmp_path), data, [], None, line)
    assert line.unit == "requests"
    line(0, 400)
    now[0] = 2.0
    line(100, 400)
    assert out.getvalue().split("\r")[-1].strip() == \
        "teacher: 100/400 requests, 50.0 requests/s, ETA 6s"
    now[0] = 8.0
    line(400, 400)
    assert out.getvalue().split("\r")[-1].rstrip() == "teacher: 400/400 requests, 50.0 requests/s"


def test_a_journal_of_the_earlier_layout_is_read_and_moved_into_the_store(fake_openai, tmp_path):
    """Answers kept under ``endpoints/`` by earlier versions (named by a fingerprint that
    included labels_map) are not asked again after an upgrade."""
    from harness.cache import key_digest

    server = fake_openai(labels={"a": "Fresh", "b": "rotten", "c": "maybe"})
    spec = endpoint_spec(server.base_url, task="classification", labels_map={"yes": "fresh"})
    data = dataset(["a", "b", "c"])
    m = model(spec, tmp_path)
    old_fp = key_digest({"type": "openai", "model": "fake-teacher", "revision": None,
                         "api": "chat", "generation": m.generation.to_dict(), "prompt": None,
                         "system": None, "labels_map": {"yes": "fresh"}})
    journal = tmp_path / "cache" / "endpoints" / f"{old_fp[:32]}-{data.sha256[:32]}.jsonl"
    journal.parent.mkdir(parents=True)
    header = {"format": "distill-harness-endpoint-journal", "version": 1,
              "fingerprint": old_fp, "data_sha256": data.sha256}
    records = [{"id": "q0", "text": "Fresh", "finish_reason": "stop", "input_tokens": 4,
                "output_tokens": 1, "latency_s": 0.1, "model": "m", "system_fingerprint": None},
               {"id": "q1", "text": "yes", "finish_reason": "stop", "input_tokens": 4,
                "output_tokens": 1, "latency_s": 0.1, "model": "m", "system_fingerprint": None}]
    journal.write_text("".join(json.dumps(r) + "\n" for r in [header, *records]) + '{"id": "q2",',
                       "utf-8")
    assert m.plan_requests(data)["cached"] == 2
    pred = m.predict(data, ["fresh", "rotten"])
    assert pred.labels == ("fresh", "fresh", INVALID_LABEL)
    assert sum(server.requests.values()) == 1 and server.requests["c"] == 1
    assert pred.usage()["requests"] == 1 and pred.usage()["cached"] == 2
    assert set(m.store(data).read()) == {"q0", "q1", "q2"}  # moved: the store alone suffices
