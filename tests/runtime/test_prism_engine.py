"""PrismEngine: two models of different KV sizes in one memory budget give each model's
own greedy outputs; one pool grows by shrinking the other's cache; a dropped model comes
back and answers the same; the earliest deadline runs first; bad options fail by name."""

from __future__ import annotations

import threading

import pytest
from model_fixtures import make_model_dir

from sglc.runtime.core import InvalidRequest, SamplingParams
from sglc.runtime.engine import Engine
from sglc.runtime.prism import PrismEngine

GREEDY = SamplingParams(max_new_tokens=6, temperature=0)
PROMPTS = ["The quick brown fox", "Question: What is 12*7?", "def f(x):"]


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("qwen3")
    make_model_dir(path, "qwen3", seed=1)  # head_dim 32: twice llama's KV per token
    return path


@pytest.fixture(scope="module")
def models(llama_dir, qwen_dir):
    return {"small": llama_dir, "wide": qwen_dir}


@pytest.fixture(scope="module")
def alone(models):
    """Each model's greedy token ids on PROMPTS, served by an engine of its own."""
    result = {}
    for name, path in models.items():
        with Engine(path, kernel_backend="torch", max_total_tokens=2048) as engine:
            result[name] = [o.token_ids for o in engine.generate(PROMPTS, GREEDY)]
    return result


def _ids(outputs):
    return [o.token_ids for o in outputs]


def test_each_model_answers_as_it_does_alone(models, alone):
    with PrismEngine(models, memory_budget=4 << 20) as engine:
        results: dict[str, list] = {}

        def run(name: str) -> None:
            results[name] = _ids(engine[name].generate(PROMPTS, GREEDY))

        threads = [threading.Thread(target=run, args=(n,)) for n in models]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == alone
        stats = engine.stats()
        assert all(m["kv_bytes_held"] > 0 for m in stats["models"].values())


def test_a_growing_pool_shrinks_the_other_models_cache(models, alone):
    # room for about 10 chunks of KV: the small model's cache fills them, then the wide
    # model's requests need most of them back
    with PrismEngine(models, memory_budget=1_650_000, chunk_bytes=16 << 10) as engine:
        small, wide = engine["small"], engine["wide"]
        fill = [f"{p} {i} " * 6 for i, p in enumerate(PROMPTS * 8)]
        small.generate(fill, SamplingParams(max_new_tokens=4, temperature=0))
        before = engine.stats()["models"]["small"]
        assert before["kv_bytes_held"] > engine.stats()["arena"]["bytes"] // 2
        long_out = SamplingParams(max_new_tokens=40, temperature=0, ignore_eos=True)
        outs = wide.generate(PROMPTS * 3, long_out)
        assert all(o.finish_reason == "length" and len(o.token_ids) == 40 for o in outs)
        after = engine.stats()["models"]
        assert after["small"]["cached_tokens"] < before["cached_tokens"]
        assert after["small"]["kv_bytes_held"] < before["kv_bytes_held"]
        assert _ids(wide.generate(PROMPTS, GREEDY)) == alone["wide"]
        assert _ids(small.generate(PROMPTS, GREEDY)) == alone["small"]


def test_a_dropped_model_reloads_and_answers_the_same(models, alone):
    with PrismEngine(models, memory_budget=4 << 20, max_resident_models=1) as engine:
        stats = engine.stats()["models"]
        assert stats["small"]["resident"] and not stats["wide"]["resident"]
        assert _ids(engine["wide"].generate(PROMPTS, GREEDY)) == alone["wide"]
        stats = engine.stats()["models"]
        assert stats["wide"]["resident"] and not stats["small"]["resident"]  # swapped
        assert len(stats["wide"]["activation_s"]) == 1
        assert stats["small"]["kv_bytes_held"] == 0  # its KV chunks went back too
        assert _ids(engine["small"].generate(PROMPTS, GREEDY)) == alone["small"]
        engine.drop("small")
        assert _ids(engine["small"].generate(PROMPTS, GREEDY)) == alone["small"]
        assert len(engine.stats()["models"]["small"]["activation_s"]) == 2


def _finish_order(engine: PrismEngine, slo: dict[str, float]) -> list[str]:
    """Submit to both models while the loop is held (the first model first): the order in
    which their requests finish."""
    order: list[str] = []
    done = threading.Event()

    def on_output(name: str):
        def record(out) -> None:
            order.append(name)
            if len(order) == 4:
                done.set()
        return record

    params = SamplingParams(max_new_tokens=8, temperature=0, ignore_eos=True)
    with engine.paused():
        for name in ("small", "wide"):
            engine[name].submit(PROMPTS[:2], params, on_output=on_output(name),
                                slo_ms=slo[name])
    assert done.wait(60)
    return order


def test_the_earliest_deadline_runs_first(models):
    with PrismEngine(models, memory_budget=4 << 20, slo_ms={"small": 60_000}) as engine:
        assert _finish_order(engine, {"small": 60_000, "wide": 50}) == ["wide"] * 2 + ["small"] * 2
        assert _finish_order(engine, {"small": 50, "wide": 60_000}) == ["small"] * 2 + ["wide"] * 2
    with PrismEngine(models, memory_budget=4 << 20, model_order="fcfs") as engine:
        assert _finish_order(engine, {"small": 60_000, "wide": 50}) == ["small"] * 2 + ["wide"] * 2


def test_bad_options_fail_naming_them(models):
    with pytest.raises(InvalidRequest, match=r"slo_ms\['small'\] must be a positive"):
        PrismEngine(models, memory_budget=4 << 20, slo_ms={"small": -5})
    with pytest.raises(InvalidRequest, match="kv_sharing must be one of elastic, static"):
        PrismEngine(models, memory_budget=4 << 20, kv_sharing="fixed")
    with pytest.raises(InvalidRequest, match="slo_ms names unknown model"):
        PrismEngine(models, memory_budget=4 << 20, slo_ms={"judge": 5})
    with pytest.raises(InvalidRequest, match=r"memory_budget=500000 bytes is smaller than the "
                                             r"weights .*max_resident_models=2"):
        PrismEngine(models, memory_budget=500_000)
    with pytest.raises(InvalidRequest, match="quantization cannot be used with memory_budget"):
        PrismEngine(models, memory_budget=4 << 20, quantization="int8")
    with pytest.raises(InvalidRequest, match="kernel_backend='cpu'"):
        PrismEngine(models, memory_budget=4 << 20, kernel_backend="cpu")
    with PrismEngine(models, memory_budget=4 << 20) as engine:
        with pytest.raises(InvalidRequest, match="slo_ms must be a positive"):
            engine["small"].generate(PROMPTS, GREEDY, slo_ms=-1)
        with pytest.raises(InvalidRequest, match="no model 'judge'"):
            engine["judge"]


PROGRAM = '''
fn draft(q: str) -> str:
    "Q: {q}\\nA:" gen a(max_tokens=6)
    return a

fn review(q: str) -> str with model="judge":
    "Q: {q}\\nA:" gen a(max_tokens=6)
    return a

fn main() -> list[str]:
    return [draft("hi"), review("hi"), draft("ok")]
'''


def test_programs_run_on_its_models_as_on_engines_of_their_own(models):
    import sglc

    prog = sglc.compile(PROGRAM, models=["default", "judge"])
    paths = {"default": models["small"], "judge": models["wide"]}
    with sglc.Runtime(models=paths, kernel_backend="torch") as rt:
        expected = prog.run("main", runtime=rt)
    with PrismEngine(paths, memory_budget=4 << 20) as engine:
        with sglc.Runtime(models={"default": engine["default"], "judge": engine["judge"]}) as rt:
            assert prog.run("main", runtime=rt) == expected


def test_a_model_waiting_for_memory_others_hold_lets_them_run(models):
    from sglc.runtime.models.loader import load_model_dir
    from sglc.runtime.prism.weights import weight_bytes

    weights = sum(weight_bytes(load_model_dir(p, load_tokenizer=False).model)
                  for p in models.values())
    long = {n: SamplingParams(max_new_tokens=k, temperature=0, ignore_eos=True)
            for n, k in (("small", 60), ("wide", 100))}
    prompts = {"small": PROMPTS, "wide": PROMPTS[:1]}
    expected = {}
    for name, path in models.items():
        with Engine(path, kernel_backend="torch", max_total_tokens=2048) as engine:
            expected[name] = _ids(engine.generate(prompts[name], long[name]))
    # 11 chunks of KV: the small model's three requests hold about 7, and the wide one's
    # needs more than the other 4: it waits (first by its deadline) while they run
    with PrismEngine(models, memory_budget=weights + 200_000, chunk_bytes=16 << 10,
                     slo_ms={"wide": 1, "small": 60_000}) as engine:
        got: dict[str, list] = {"small": [], "wide": []}
        done = threading.Event()

        def record(name: str):
            def add(out) -> None:
                got[name].append(out)
                if len(got["small"]) + len(got["wide"]) == 4:
                    done.set()
            return add

        with engine.paused():
            for name in ("small", "wide"):
                engine[name].submit(prompts[name], long[name], on_output=record(name))
        assert done.wait(120)
        assert [o.token_ids for o in got["wide"]] == expected["wide"]
        assert sorted(o.token_ids for o in got["small"]) == sorted(expected["small"])
