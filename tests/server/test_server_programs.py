"""/v1/programs: registered (--program) and uploaded SGL programs run on the server, with
their value, printed output and trace; compile, argument and runtime errors; uploads
cannot reach the server's files."""

from __future__ import annotations

import pytest

UPLOAD = '''
fn main(topic: str = "the sea") -> str:
    "Write about {topic}:" gen text(max_tokens=6, temperature=0)
    print("done")
    return text
'''


@pytest.fixture(scope="module")
def http(server):
    with server.http() as client:
        yield client


def run(http, **body):
    return http.post("/v1/programs/run", json=body)


def test_registered_programs_are_listed(http):
    (entry,) = http.get("/v1/programs").json()["data"]
    assert entry == {"name": "qa", "functions": ["answer", "main", "pick"], "entry": "main"}


def test_run_a_registered_program(http, local_engine):
    r = run(http, program="qa", fn="answer", args={"question": "What is 2+2?"})
    assert r.status_code == 200, r.text
    body = r.json()
    messages = [{"role": "user", "content": "What is 2+2?"}]
    (expected,) = local_engine.generate([messages], {"max_new_tokens": 12, "temperature": 0})
    assert body["value"] == expected.text
    assert body["program"] == "qa" and body["fn"] == "answer"
    (call,) = body["trace"]["calls"]
    assert call["kind"] == "gen" and call["output"] == expected.text


def test_select_and_entry_and_printed_output(http):
    picked = run(http, program="qa", fn="pick", args=["Is the sky blue?"]).json()
    assert picked["value"] in ("yes", "no")
    assert picked["trace"]["calls"][0]["kind"] == "select"
    main = run(http, program="qa", trace=False).json()
    assert main == {"program": "qa", "fn": "main", "value": 42, "output": "hello from qa\n",
                    "trace": None}


def test_run_uploaded_source(http):
    body = run(http, source=UPLOAD, args={"topic": "rain"}).json()
    assert isinstance(body["value"], str) and body["output"] == "done\n"
    assert body["program"] == "<upload>"
    (call,) = body["trace"]["calls"]
    assert call["prompt"] == "Write about rain:"
    assert call["location"].startswith("<upload>:")  # not the server's temp path


def test_compile_errors_are_400_with_diagnostics(http):
    r = run(http, source="fn main(:\n    return 1\n")
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "compile_error" and error["param"] == "source"
    assert error["message"].startswith("<upload>:1:9: error:")
    assert "^" in error["message"]  # the caret line


def test_argument_and_runtime_errors(http):
    r = run(http, program="qa", fn="answer", args={"nope": 1})
    assert r.status_code == 400 and r.json()["error"]["code"] == "argument_error"
    assert "no parameter 'nope'" in r.json()["error"]["message"]
    r = run(http, program="qa", fn="missing")
    assert r.status_code == 400 and "no fn 'missing'" in r.json()["error"]["message"]
    source = 'fn main(x: str = "") -> str:\n    requires len(x) > 0\n    return x\n'
    r = run(http, source=source)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "program_error"
    assert "requires failed" in r.json()["error"]["message"]


@pytest.mark.parametrize("source", [
    'import "/etc/passwd"\nfn main() -> int:\n    return 1\n',
    'import "../../../etc/hosts.sgl" as h\nfn main() -> int:\n    return 1\n',
])
def test_uploads_cannot_import_files(http, source):
    r = run(http, source=source)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "import_not_allowed"
    assert "root:" not in error["message"]


def test_uploads_may_import_the_standard_library(http):
    source = 'import tools\nfn main() -> str:\n    return tools.calculator("6*7")\n'
    r = run(http, source=source)
    assert r.status_code == 200, r.text
    assert r.json()["value"] == "42"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"program": "nope"}, 404, "program_not_found"),
    ({}, 400, None),
    ({"program": "qa", "source": UPLOAD}, 400, None),
    ({"program": "qa", "args": "x"}, 400, None),
])
def test_bad_program_requests(http, body, status, code):
    r = run(http, **body)
    assert r.status_code == status, r.text
    if code:
        assert r.json()["error"]["code"] == code
    assert run(http, program="qa", trace=False).status_code == 200
