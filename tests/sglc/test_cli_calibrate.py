"""`sglc calibrate`: the outlier-channel file written next to the model, the shipped default
model's file reproduced from its own data, generate with --attention-sparsity, usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_fixtures import make_model_dir

from sglc.cli import main
from sglc.runtime.engine import default_model_path
from sglc.runtime.sparsity.calibration import CALIBRATION_FILE


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("calibrate-model")
    make_model_dir(path, "llama")
    return path


def test_calibrate_writes_a_ranking_next_to_the_model(model_dir, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 30)
    assert main(["calibrate", str(model_dir), "--text", str(text), "--tokens", "200"]) == 0
    assert "2 layers x 2 KV heads x 16 channels ranked over 200 tokens" in capsys.readouterr().out
    data = json.loads((model_dir / CALIBRATION_FILE).read_text())
    assert data["model"]["num_layers"] == 2 and data["num_tokens"] == 200
    for layer, scores in zip(data["channels"], data["importance"], strict=True):
        for head, head_scores in zip(layer, scores, strict=True):
            assert sorted(head) == list(range(16))
            assert head_scores == sorted(head_scores, reverse=True)
    # generate serves attention_sparsity from it
    assert main(["generate", "--model", str(model_dir), "--sparsity-calibration", "auto",
                 "--attention-sparsity", "0.25", "0.25", "--max-new-tokens", "4",
                 "--max-total-tokens", "1024", "The quick brown fox jumps over"]) == 0


def test_the_shipped_default_model_file_is_what_calibrate_makes(tmp_path, capsys):
    out = tmp_path / "ds.json"
    assert main(["calibrate", "--out", str(out)]) == 0
    made = json.loads(out.read_text())
    shipped = json.loads((default_model_path() / CALIBRATION_FILE).read_text())
    assert made["model"] == shipped["model"]
    # the label channels (the top quarter of each head) agree; the tail may swap on ties
    top = [[head[:8] for head in layer] for layer in made["channels"]]
    assert top == [[head[:8] for head in layer] for layer in shipped["channels"]]


def test_usage_errors(model_dir, tmp_path, capsys):
    assert main(["calibrate", str(model_dir)]) == 2
    assert "is not the embedded default model: give calibration text with --text FILE" in \
        capsys.readouterr().err
    assert main(["calibrate", "--tokens", "0"]) == 2
    assert "--tokens must be >= 1" in capsys.readouterr().err
    assert main(["calibrate", str(tmp_path / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("")
    assert main(["calibrate", str(model_dir), "--text", str(tmp_path / "empty.txt")]) == 2
    assert "the file has no tokens" in capsys.readouterr().err
    assert main(["generate", "--model", str(model_dir), "--attention-sparsity", "0", "1",
                 "--max-total-tokens", "1024", "hi"]) == 1
    assert "attention_sparsity must be None or a pair" in capsys.readouterr().err
    assert Path(model_dir).is_dir()
