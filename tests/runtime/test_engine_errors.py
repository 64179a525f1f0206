"""Bad input gets a clear exception naming the problem; other requests are unaffected."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
import torch
from model_fixtures import make_model_dir

import sglc
from sglc.runtime.core import EngineError, InvalidRequest
from sglc.runtime.models.config import UnsupportedModel
from sglc.runtime.models.loader import ModelLoadError

OK = {"max_new_tokens": 4, "temperature": 0, "ignore_eos": True}


@pytest.mark.parametrize(
    ("prompt", "params", "message"),
    [
        ("", OK, "empty prompt"),
        ([], OK, "prompts must be"),
        ([[]], OK, "empty prompt"),
        ([[1, 99999]], OK, "outside the vocabulary"),
        ([[1, -3]], OK, "outside the vocabulary"),
        ([[1] * 600], OK, "longer than this engine allows"),
        ("hi", {"temperature": -1}, "temperature must be >= 0"),
        ("hi", {"top_p": 0}, "top_p must be in (0, 1]"),
        ("hi", {"top_k": 0}, "top_k must be None or an integer >= 1"),
        ("hi", {"max_new_tokens": -1}, "max_new_tokens"),
        ("hi", {"n": 0}, "n must be"),
        ("hi", {"stop": [""]}, "stop must be a non-empty string or a list of non-empty strings, got ['']"),
        ("hi", {"frequency_penalty": 5}, "frequency_penalty"),
        ("hi", {"tempreature": 0.5}, "unknown key(s) tempreature"),
        (["a", "b"], [OK], "got 1 sampling params for 2 prompts"),
        ([[{"role": "user"}]], OK, "'role' and 'content'"),
        (3.5, OK, "prompts must be"),
    ],
)
def test_invalid_requests_raise_clear_errors(llama_engine, prompt, params, message):
    with pytest.raises(InvalidRequest) as info:
        llama_engine.generate(prompt, params)
    assert message in str(info.value)


def test_bad_request_fails_alone_while_others_run(llama_engine):
    results: dict[str, object] = {}

    def good() -> None:
        results["good"] = llama_engine.generate([[1, 2, 3]], {**OK, "max_new_tokens": 30})[0]

    thread = threading.Thread(target=good)
    thread.start()
    for bad in ([[1, 10**6]], ""):
        with pytest.raises(InvalidRequest):
            llama_engine.generate(bad, OK)
    thread.join()
    assert len(results["good"].token_ids) == 30


def test_unknown_engine_option(llama_dir):
    with pytest.raises(InvalidRequest, match="unknown Engine option"):
        sglc.Engine(llama_dir, max_tokens=5)
    with pytest.raises(ValueError, match="unknown policy 'fifo'"):
        sglc.Engine(llama_dir, policy="fifo")


def test_missing_model_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        sglc.Engine(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match="has no config.json"):
        sglc.Engine(tmp_path)


def test_model_directory_and_options_are_checked_before_the_kernels_are_built(
    llama_dir, tmp_path, monkeypatch
):
    import sglc.runtime.engine.engine as engine_module

    def no_kernels(*args, **kwargs):
        raise AssertionError("kernels built before the checks")

    monkeypatch.setattr(engine_module, "kernel_ops", no_kernels)  # the C++ build may take long
    with pytest.raises(ModelLoadError, match="does not exist"):
        sglc.Engine(tmp_path / "nope", attention_backend="cpu")
    with pytest.raises(ValueError, match="unknown policy 'fifo'"):
        sglc.Engine(llama_dir, policy="fifo")
    with pytest.raises(InvalidRequest, match="unknown kernel backend 'fast'"):
        sglc.Engine(llama_dir, attention_backend="fast")
    with pytest.raises(InvalidRequest, match="device='gpu' is not a device"):
        sglc.Engine(llama_dir, device="gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InvalidRequest, match=r"device='cuda': CUDA is not available \(.*\); "
                                             "drop the device option to run on the CPU"):
        sglc.Engine(llama_dir, device="cuda")


def copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_missing_and_corrupt_safetensors(llama_dir, tmp_path):
    d = copy_model(llama_dir, tmp_path / "m")
    weights = d / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="corrupt or unreadable safetensors"):
        sglc.Engine(d)
    weights.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ModelLoadError, match="corrupt or unreadable safetensors"):
        sglc.Engine(d)
    weights.unlink()
    with pytest.raises(ModelLoadError, match="no \\*.safetensors weights"):
        sglc.Engine(d)


def test_weights_missing_or_misshapen(tmp_path):
    make_model_dir(tmp_path, "llama", num_hidden_layers=1)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 2}))
    with pytest.raises(ModelLoadError, match="weights missing .*model.layers.1"):
        sglc.Engine(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 96}))
    with pytest.raises(ModelLoadError, match="has shape"):
        sglc.Engine(tmp_path)


def test_unsupported_architecture_and_bad_config(llama_dir, tmp_path):
    d = copy_model(llama_dir, tmp_path / "m")
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(UnsupportedModel, match="unsupported architecture.*GPT2LMHeadModel"):
        sglc.Engine(d)
    (d / "config.json").write_text("{ not json")
    with pytest.raises(ModelLoadError, match="cannot read"):
        sglc.Engine(d)
    rope = {**cfg, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}}
    (d / "config.json").write_text(json.dumps(rope))
    with pytest.raises((UnsupportedModel, ValueError), match="yarn"):
        sglc.Engine(d)


def test_sharded_checkpoint_loads(llama_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(llama_dir)
    model.save_pretrained(tmp_path, max_shard_size="100KB")
    shutil.copy(llama_dir / "tokenizer.json", tmp_path)
    assert (tmp_path / "model.safetensors.index.json").is_file()
    prompt = [[1, 5, 9]]
    with sglc.Engine(tmp_path, max_total_tokens=1024) as sharded, \
            sglc.Engine(llama_dir, max_total_tokens=1024) as single:
        assert sharded.generate(prompt, OK)[0].token_ids == single.generate(prompt, OK)[0].token_ids
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shard = sorted(set(index["weight_map"].values()))[-1]
    (tmp_path / shard).unlink()
    with pytest.raises(ModelLoadError, match="missing shard"):
        sglc.Engine(tmp_path)


def test_engine_errors_are_one_family():
    assert issubclass(InvalidRequest, EngineError)
    assert issubclass(ModelLoadError, EngineError)
    assert issubclass(UnsupportedModel, EngineError)


def test_failing_forward_pass_fails_its_batch_and_the_engine_goes_on(llama_dir):
    import sglc

    with sglc.Engine(llama_dir, max_total_tokens=2048) as engine:
        real_forward, calls = engine.core.runner.forward, []

        def flaky_forward(batch, logit_columns=None, **kw):  # a test double: the first pass (an extend) fails
            calls.append(batch.mode)
            if len(calls) == 1:
                raise RuntimeError("device lost")
            return real_forward(batch, logit_columns, **kw)

        engine.core.runner.forward = flaky_forward
        (failed,) = engine.generate([[1, 5, 7]], {"max_new_tokens": 4, "temperature": 0})
        assert failed.finish_reason.value == "abort" and "device lost" in failed.error
        (ok,) = engine.generate([[1, 5, 7]], {"max_new_tokens": 4, "temperature": 0,
                                              "ignore_eos": True})
        assert ok.error is None and len(ok.token_ids) == 4
        assert engine.stats()["num_failed_batches"] == 1


def test_attention_backend_is_another_name_for_kernel_backend():
    from sglc.runtime.engine.build import engine_config

    assert engine_config({"attention_backend": "torch"}).kernel_backend == "torch"
    assert engine_config({"attention_backend": "cpu", "kernel_backend": "cpu"}).kernel_backend == "cpu"
    with pytest.raises(InvalidRequest, match="they are one option; give kernel_backend only"):
        engine_config({"attention_backend": "torch", "kernel_backend": "cpu"})
