"""Double Sparsity through the engine: token_ratio 1 decodes as dense, sparse requests leave
dense ones alone (in a batch and in the prefix cache), and every bad input is refused
before work starts with the option named."""

from __future__ import annotations

import json

import pytest

import sglc
from sglc.kernels.cpu_build import cpu_kernels_available
from sglc.runtime.core import InvalidRequest, SamplingParams
from sglc.runtime.sparsity.calibrate import calibrate

# contexts of 40-60 tokens: past the 16-token floor, so token_ratio 0.25 selects a subset
PROMPTS = [list(range(3, 43)), list(range(60, 115)), [7, 9, 11] * 15]
GREEDY = {"max_new_tokens": 12, "temperature": 0, "ignore_eos": True}
SPARSE = {**GREEDY, "attention_sparsity": (0.25, 0.25)}


@pytest.fixture(scope="module")
def calibration_file(llama_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "double_sparsity.json"
    calibrate(llama_dir, list(range(3, 250)), data="test tokens").save(path)
    return path


@pytest.fixture(scope="module")
def engine(llama_dir, calibration_file):
    with sglc.Engine(llama_dir, max_total_tokens=4096, kernel_backend="torch",
                     sparsity_calibration=str(calibration_file)) as engine:
        yield engine


def _tokens(engine, prompts, params):
    return [o.token_ids for o in engine.generate(prompts, params)]


def test_token_ratio_one_decodes_as_dense(engine):
    dense = _tokens(engine, PROMPTS, GREEDY)
    assert _tokens(engine, PROMPTS, {**GREEDY, "attention_sparsity": (1.0, 0.125)}) == dense


def test_sparse_requests_change_no_dense_output_in_a_mixed_batch(engine):
    alone = _tokens(engine, PROMPTS, GREEDY)
    sparse_alone = _tokens(engine, PROMPTS, SPARSE)
    assert sparse_alone != alone  # the sparse path ran and attended to fewer tokens
    mixed = engine.generate(PROMPTS + PROMPTS, [GREEDY] * 3 + [SPARSE] * 3)
    assert [o.token_ids for o in mixed[:3]] == alone
    assert [o.token_ids for o in mixed[3:]] == sparse_alone


def test_sparse_outputs_never_reach_dense_requests_through_the_prefix_cache(
        llama_dir, calibration_file):
    with sglc.Engine(llama_dir, max_total_tokens=4096, kernel_backend="torch") as plain:
        first = _tokens(plain, PROMPTS[:1], GREEDY)[0]
        follow = PROMPTS[0] + first
        want = _tokens(plain, [follow], GREEDY)[0]
    with sglc.Engine(llama_dir, max_total_tokens=4096, kernel_backend="torch",
                     sparsity_calibration=str(calibration_file)) as engine:
        sparse = _tokens(engine, [PROMPTS[0]], SPARSE)[0]
        # a dense request continuing the sparse one's text, and one continuing the dense text
        got = _tokens(engine, [PROMPTS[0] + sparse, follow], GREEDY)
    with sglc.Engine(llama_dir, max_total_tokens=4096, kernel_backend="torch") as plain:
        want_after_sparse = _tokens(plain, [PROMPTS[0] + sparse], GREEDY)[0]
    assert got == [want_after_sparse, want]


@pytest.mark.skipif(not cpu_kernels_available(), reason="no C++ toolchain")
def test_the_cpu_backend_serves_both_kinds(llama_dir, calibration_file, engine):
    want = _tokens(engine, PROMPTS, GREEDY), _tokens(engine, PROMPTS, SPARSE)
    with sglc.Engine(llama_dir, max_total_tokens=4096, kernel_backend="cpu",
                     sparsity_calibration=str(calibration_file)) as cpu:
        mixed = [o.token_ids for o in cpu.generate(PROMPTS * 2, [GREEDY] * 3 + [SPARSE] * 3)]
    assert mixed[:3] == want[0] and mixed[3:] == want[1]


@pytest.mark.parametrize("value", [(0, 0.5), (0.5, 1.5), (0.5,), "0.5", (float("nan"), 1)])
def test_ratios_outside_zero_one_are_refused(value):
    with pytest.raises(InvalidRequest, match=r"attention_sparsity must be None or a pair "
                       r"\(token_ratio, channel_ratio\) of numbers in \(0, 1\]"):
        SamplingParams(attention_sparsity=value)


def test_requests_the_engine_cannot_serve_are_refused(engine, llama_engine):
    with pytest.raises(InvalidRequest, match="started with sparsity_calibration"):
        llama_engine.generate(PROMPTS[0], SPARSE)
    with pytest.raises(InvalidRequest, match=r"channel_ratio 0.5 .*sparsity_label_ratio=0.25"):
        engine.generate(PROMPTS[0], {**GREEDY, "attention_sparsity": (0.25, 0.5)})


def test_a_missing_or_mismatching_calibration_is_refused_before_loading(
        llama_dir, calibration_file, tmp_path):
    with pytest.raises(InvalidRequest, match=r"sparsity_calibration='auto': no calibration "
                       r"file at .*double_sparsity.json; run `sglc calibrate"):
        sglc.Engine(llama_dir, sparsity_calibration="auto")
    # the default model's own file does not fit the tiny model
    with pytest.raises(InvalidRequest, match=r"calibrated for another model \(num_layers 6 "
                       r"!= 2; .*sparsity_calibration=PATH"):
        sglc.Engine(llama_dir, sparsity_calibration=str(
            sglc.runtime.engine.default_model_path() / "double_sparsity.json"))
    edited = json.loads(calibration_file.read_text())
    edited["model"]["weights_sha256"] = "0" * 64
    (tmp_path / "other.json").write_text(json.dumps(edited))
    with pytest.raises(InvalidRequest, match=r"weights_sha256 0000"):
        sglc.Engine(llama_dir, sparsity_calibration=str(tmp_path / "other.json"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InvalidRequest, match=r"cannot read .*bad.json: not a "
                       r"sglc-double-sparsity version 1 file"):
        sglc.Engine(llama_dir, sparsity_calibration=str(tmp_path / "bad.json"))
    with pytest.raises(InvalidRequest, match="Double Sparsity needs kv_policy 'exact'"):
        sglc.Engine(llama_dir, sparsity_calibration=str(calibration_file), kv_policy="h2o",
                    kv_budget=32)


def test_engine_decode_follows_the_teacher_forced_reference(engine, llama_dir,
                                                             calibration_file):
    """The engine's greedy sparse tokens are the argmax of the whole-sequence masked
    reference run over the prompt and those tokens (prompt dense, each later row sparse)."""
    import torch

    from sglc.runtime.models.loader import load_model_dir
    from sglc.runtime.sparsity.calibration import load_calibration
    from sglc.runtime.sparsity.decode import LabelCache
    from sglc.runtime.sparsity.reference import SparseCausalAttention

    loaded = load_model_dir(llama_dir, dtype="float32", load_tokenizer=False)
    calibration = load_calibration(str(calibration_file), llama_dir,
                                   json.loads((llama_dir / "config.json").read_text()))
    labels = LabelCache(calibration, 0.25, 1, torch.float32, torch.device("cpu"), 16)
    for prompt, out in zip(PROMPTS, _tokens(engine, PROMPTS, SPARSE), strict=True):
        ids = torch.tensor(prompt + out[:-1])
        attn = SparseCausalAttention(labels, len(ids), len(prompt), (0.25, 0.25))
        with torch.inference_mode():
            hidden = loaded.model(ids, torch.arange(len(ids)), attn)
        predicted = loaded.model.compute_logits(hidden)[len(prompt) - 1:].argmax(-1)
        assert predicted.tolist() == out
