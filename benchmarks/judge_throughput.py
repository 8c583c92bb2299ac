"""Judge throughput: judged examples per second, both orders, against an instant local judge.

The judge is an OpenAI-compatible server on 127.0.0.1 (aiohttp, in its own process) that
answers at once, reading the tests' prompt format (``tests/judges/judge_server.py``); the client
is the harness's judges step (``harness.judges.judges_step``: request building, the endpoint
adapter, the per-judgment store, verdict parsing and the health figures) over a generation suite
of prediction files. Every
example is judged in both orders (``swap: true``), so N examples are 2·N requests.

Measured: cold (an empty cache) at 8 and 32 connections, and a fully cached rerun (no request).
Targets: ≥ 150 judged examples/s cold at 32 connections; a cached rerun of 10,000 examples in
≤ 2 s. Reference: the same server answering the same requests from a bare loop of the ``openai``
client (no harness), at 32 connections, timed in the same run — the ratio shows what the
harness adds.

    python benchmarks/judge_throughput.py            # 10,000 examples
    python benchmarks/judge_throughput.py --quick    # 300 examples (the benchmark test)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "judges"))

CONNECTIONS = (8, 32)


def _serve(port_queue: mp.Queue, stop: mp.Event) -> None:  # type: ignore[type-arg]
    """An instant OpenAI-compatible judge (aiohttp, its own process and event loop): it reads
    the two answers a prompt shows and says which has no "WRONG" in it."""
    from aiohttp import web
    from judge_server import shown

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        a, b = shown(prompt)
        bad_a, bad_b = "WRONG" in a, "WRONG" in b
        verdict = "C" if bad_a == bad_b else ("B" if bad_a else "A")
        return web.json_response({
            "id": "j", "object": "chat.completion", "created": 0, "model": "judge",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"[[{verdict}]]"}}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 1,
                      "total_tokens": len(prompt.split()) + 1}})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=256)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        port_queue.put(f"http://127.0.0.1:{port}/v1")
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await runner.cleanup()

    asyncio.run(main())


def _repo(root: Path, n: int, url: str, connections: int) -> Path:
    import yaml
    from judge_server import PAIRWISE_PROMPT

    for d in ("data", "suites", "rubrics", "preds"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'bench'\n", "utf-8")
    rows = [{"id": f"q{i:06d}", "text": f"Question {i}?", "topic": ("a", "b", "c", "d")[i % 4]}
            for i in range(n)]
    with (root / "data" / "chat.jsonl").open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    for who in ("teacher", "student"):
        with (root / "preds" / f"{who}.jsonl").open("w", encoding="utf-8") as fh:
            for i, r in enumerate(rows):
                bad = who == "student" and i % 4 == 0
                fh.write(json.dumps({"id": r["id"], "output": ("WRONG " if bad else "")
                                     + f"answer {i}"}) + "\n")
    (root / "rubrics" / "judge.md").write_text(PAIRWISE_PROMPT, "utf-8")
    (root / "rubrics" / "chat.yaml").write_text(yaml.safe_dump(
        {"schema_version": 1, "id": "bench", "version": 1, "criteria": [
            {"name": "judged", "metric": "judge:j", "compare": "value", "min": 0.4,
             "scope": "overall"}]}), "utf-8")
    suite = {"schema_version": 1, "name": "chat", "version": "1", "task": "generation",
             "data": {"path": "../data/chat.jsonl", "input": "text", "features": ["topic"]},
             "teacher": {"type": "predictions", "path": "../preds/teacher.jsonl"},
             "student": {"type": "predictions", "path": "../preds/student.jsonl"},
             "rubric": "../rubrics/chat.yaml",
             "judges": {"j": {"model": {"type": "openai", "base_url": url, "model": "judge",
                                        "max_connections": connections, "timeout_s": 30,
                                        "retries": 2,
                                        "generation": {"max_new_tokens": 8, "temperature": 0}},
                              "prompt": "../rubrics/judge.md"}}}
    (root / "suites" / "chat.yaml").write_text(yaml.safe_dump(suite), "utf-8")
    return root / "suites" / "chat.yaml"


def _judge_once(suite: Path, cache: Path) -> tuple[float, dict]:
    from harness.cache import PredictionCache
    from harness.judges import judges_step
    from harness.models.runs import load_models, run_model
    from harness.options import Options
    from harness.runner import prepare_suite

    options = Options(cache_dir=cache)
    prep = prepare_suite(suite, options)
    models = load_models(prep.spec, options)
    try:
        runs = [run_model(m, prep.model_data, len(prep.data), prep.task, prep.spec, options,
                          PredictionCache(cache)) for m in (models.teacher, models.student)]
        start = time.perf_counter()
        out = judges_step(prep.spec, prep.data, runs[0], runs[1], options)
        elapsed = time.perf_counter() - start
    finally:
        models.close()
    return elapsed, out.results["j"].to_report()


async def _bare(url: str, prompts: list[str], connections: int) -> float:
    """The reference: the same requests from a bare ``AsyncOpenAI`` loop, no harness."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="none", max_retries=2, timeout=30)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for p in prompts:
        queue.put_nowait(p)

    async def worker() -> None:
        while not queue.empty():
            p = queue.get_nowait()
            await client.chat.completions.create(model="judge", max_tokens=8, temperature=0,
                                                 messages=[{"role": "user", "content": p}])

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 examples (seconds)")
    parser.add_argument("-n", type=int, default=None, help="examples (default 10,000)")
    args = parser.parse_args()
    n = args.n or (300 if args.quick else 10_000)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ctx = mp.get_context("spawn")
    urls: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    stop = ctx.Event()
    server = ctx.Process(target=_serve, args=(urls, stop), daemon=True)
    server.start()
    url = urls.get(timeout=60)
    work = Path(tempfile.mkdtemp(prefix="judge-bench-"))
    try:
        print(f"judge throughput: {n:,} examples, both orders ({2 * n:,} judgments), "
              f"load average {os.getloadavg()[0]:.1f}")
        cold: dict[int, float] = {}
        for conns in CONNECTIONS:
            suite = _repo(work / f"c{conns}", n, url, conns)
            cache = work / f"c{conns}" / ".cache"
            elapsed, report = _judge_once(suite, cache)
            assert report["requests"] == 2 * n, report
            cold[conns] = n / elapsed
            print(f"  cold, {conns:>2} connections: {elapsed:7.2f} s, {cold[conns]:8.1f} judged "
                  f"examples/s ({2 * n / elapsed:,.0f} requests/s)")
        warm, report = _judge_once(suite, cache)
        assert report["requests"] == 0, report
        print(f"  cached rerun (32 connections' cache): {warm:7.2f} s, {n / warm:,.0f} judged "
              "examples/s, 0 requests")
        from judge_server import PAIRWISE_PROMPT

        prompts = [PAIRWISE_PROMPT.format(prompt=f"Question {i}?", answer_a=f"answer {i}",
                                          answer_b=f"answer {i}") for i in range(2 * n)]
        bare = asyncio.run(_bare(url, prompts, 32))
        bare_rate = n / bare
        print(f"  reference (bare AsyncOpenAI loop, 32 connections): {bare:7.2f} s, "
              f"{bare_rate:8.1f} examples/s; harness/bare = {cold[32] / bare_rate:.2f}")
        scale = 10_000 / n
        print(f"target: >= 150 judged examples/s cold at 32 connections: {cold[32]:.1f} "
              f"({'met' if cold[32] >= 150 else 'NOT met'})")
        print(f"target: cached rerun of 10,000 examples <= 2 s: {warm * scale:.2f} s "
              f"{'(scaled from ' + format(n, ',') + ')' if n != 10_000 else ''} "
              f"({'met' if warm * scale <= 2 else 'NOT met'})")
    finally:
        stop.set()
        server.join(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
