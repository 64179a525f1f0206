"""The viewer's page without a browser: the data it embeds, bad trace files, the CLI."""

from __future__ import annotations

import json
import re

import pytest
from trace_fixtures import PROGRAM

from sglc.cli import main
from sglc.trace_view import TraceFileError, load_trace, render_html

CALL = {"id": 0, "kind": "gen", "fn": "main", "name": "x", "location": "p.sgl:2:5",
        "prompt": "a</script><script>alert(1)</script>", "output": "ok", "start_s": 0.0,
        "end_s": 0.1}


def embedded(page: str) -> dict:
    match = re.search(r'<script id="trace-data" type="application/json">(.*?)</script>', page,
                      re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_the_page_embeds_the_trace_and_the_lines_it_points_at():
    trace = {"calls": [CALL], "error": {"message": "boom", "location": "p.sgl:1:1"}}
    page = render_html(trace, {"p.sgl": "fn main():\n    \"a\" gen x\n"})
    data = embedded(page)  # the prompt's "</script>" did not end the data block early
    assert data["trace"]["calls"][0]["prompt"] == CALL["prompt"]
    assert data["lines"] == {"p.sgl:2": '    "a" gen x', "p.sgl:1": "fn main():"}
    assert "http://" not in page and "https://" not in page  # nothing fetched


@pytest.mark.parametrize("text, message", [
    ("{not json", "not JSON"),
    ('{"calls": 3}', 'not an sglc trace'),
    ("[]", "not an sglc trace"),
])
def test_a_file_that_is_not_a_trace_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "t.json"
    path.write_text(text)
    with pytest.raises(TraceFileError, match=message):
        load_trace(path)


def test_sglc_trace_view_writes_the_page(tmp_path, capsys):
    (tmp_path / "p.sgl").write_text(PROGRAM)
    trace = {"version": 1, "calls": [{**CALL, "location": f"{tmp_path / 'p.sgl'}:3:5"}]}
    (tmp_path / "t.json").write_text(json.dumps(trace))
    assert main(["trace", "view", str(tmp_path / "t.json")]) == 0
    written = tmp_path / "t.html"
    assert capsys.readouterr().out.strip() == str(written)
    lines = embedded(written.read_text())["lines"]
    assert list(lines.values()) == ['    "Say {word}: " gen said(max_tokens=2, logprobs=2, '
                                    'ignore_eos=True)']
    assert main(["trace", "view", str(tmp_path / "t.json"), "-o", str(tmp_path / "o.html")]) == 0
    assert (tmp_path / "o.html").exists()


def test_sglc_trace_view_errors(tmp_path, capsys):
    assert main(["trace", "view", str(tmp_path / "missing.json")]) == 1
    assert "file not found" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("[1]")
    assert main(["trace", "view", str(tmp_path / "bad.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sglc: error: ") and "not an sglc trace" in err and err.count("\n") == 1


def test_sglc_run_trace_html(tmp_path, trace_runtime, monkeypatch):
    import sglc.cli.program_commands as commands

    (tmp_path / "p.sgl").write_text(PROGRAM)
    monkeypatch.setattr(commands, "make_runtime", lambda args, mux=None: _Borrowed(trace_runtime))
    argv = ["run", str(tmp_path / "p.sgl"), "--fn", "item", "-a", "word=red",
            "--trace", str(tmp_path / "t.json"), "--trace-html", str(tmp_path / "t.html")]
    assert main(argv) == 0
    data = embedded((tmp_path / "t.html").read_text())
    assert data["trace"]["calls"][0]["name"] == "said"
    assert json.loads((tmp_path / "t.json").read_text())["calls"][0]["name"] == "said"
    assert any("gen said" in line for line in data["lines"].values())


class _Borrowed:
    """The session's runtime, lent to one CLI run (which would close its own)."""

    def __init__(self, runtime) -> None:
        self.runtime = runtime

    def __getattr__(self, name):
        return getattr(self.runtime, name)

    def __enter__(self):
        return self.runtime

    def __exit__(self, *exc) -> None:
        pass
