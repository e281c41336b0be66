"""`lmtune serve`'s app on a tiny trained classification run: predictions, limits, errors, API key, batching."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import uvicorn
from conftest import lmtune
from fastapi.testclient import TestClient

from lmtune.errors import UserError
from lmtune.serving import create_app

LIMITS = {"max_inputs": 8, "max_chars": 200, "max_body_bytes": 4000}
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run_dir(tiny_run) -> Path:
    return tiny_run


@pytest.fixture(scope="module")
def client(run_dir):
    with TestClient(create_app(run_dir, **LIMITS)) as c:  # `with` runs the lifespan: the batch worker
        yield c


def until(condition, seconds: float = 30) -> None:
    """Wait for another thread to get somewhere (a gate, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)


def test_predict_one_and_many(client):
    one = client.post("/predict", json={"input": "the film good"})
    assert one.status_code == 200, one.text
    [record] = one.json()["predictions"]
    assert record["text"] == "the film good" and record["row"] == 1
    assert record["label"] in {"bad", "good"}
    assert set(record["probabilities"]) == {"bad", "good"}
    assert sum(record["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert record["score"] == record["probabilities"][record["label"]]

    many = client.post("/predict", json={"inputs": ["the film good", "  the   food bad ", {"text": "love"}]})
    assert many.status_code == 200, many.text
    predictions = many.json()["predictions"]
    assert [p["text"] for p in predictions] == ["the film good", "  the   food bad ", "love"]  # echoed as sent
    assert [p["row"] for p in predictions] == [1, 2, 3]
    assert predictions[0]["probabilities"] == pytest.approx(record["probabilities"], abs=1e-5)


def test_health_and_info(client, run_dir):
    assert client.get("/health").json() == {"status": "ok", "queue": 0}
    info = client.get("/info").json()
    assert info["task"] == "classification"
    assert info["labels"] == ["bad", "good"]
    assert info["model"] == run_dir.name
    assert str(run_dir) not in client.get("/info").text  # no server paths for clients
    assert info["limits"]["max_inputs"] == 8 and info["lmtune"]
    assert client.get("/docs").status_code == 404  # its page loads scripts from a CDN: only with docs=True
    assert client.get("/openapi.json").status_code == 404


def chunks(data: bytes):
    yield data  # a generator body goes out chunked, without a Content-Length


BAD_REQUESTS = {
    "empty body": ({"content": b"", "headers": {"content-type": "application/json"}}, 422, ""),
    "invalid JSON": ({"content": b'{"inputs": [', "headers": {"content-type": "application/json"}}, 422, "JSON"),
    "a top-level list": ({"json": ["the film"]}, 422, ""),
    "neither field": ({"json": {}}, 422, "either"),
    "both fields": ({"json": {"input": "a", "inputs": ["b"]}}, 422, "either"),
    "empty inputs": ({"json": {"inputs": []}}, 422, "empty"),
    "wrong types": ({"json": {"inputs": [1, 2]}}, 422, ""),
    "a string for the list": ({"json": {"inputs": "the film"}}, 422, ""),
    "an empty object": ({"json": {"inputs": [{}]}}, 422, ""),
    "an object without the task's field": ({"json": {"inputs": [{"text_pair": "a"}]}}, 422,
                                           "lack the field 'text'"),
    "a field the task does not read": ({"json": {"inputs": [{"text": "a", "question": "b"}]}}, 422,
                                       "question, which this model does not read"),
    "unknown field": ({"json": {"inputs": ["a"], "batch": 3}}, 422, "batch"),
    "a lone surrogate": ({"content": b'{"inputs": ["ok", "bad \\ud83d"]}', "headers": {"content-type":
                                                                                   "application/json"}},
                         422, "inputs[1] holds a lone surrogate"),
    "a lone surrogate in a field": ({"content": b'{"input": {"text": "\\udc00"}}',
                                     "headers": {"content-type": "application/json"}}, 422, "lone surrogate"),
    "too many inputs": ({"json": {"inputs": ["a"] * 9}}, 413, "at most 8"),
    "over-long text": ({"json": {"inputs": ["fine", "x" * 201]}}, 422, "inputs[1]"),
    "over-long field": ({"json": {"inputs": [{"text": "fine", "text_pair": "x" * 201}]}}, 422, "inputs[0].text_pair"),
    "body over the limit": ({"json": {"inputs": ["x" * 5000]}}, 413, "too large"),
    "chunked body over the limit": ({"content": chunks(b'{"inputs": ["' + b"x" * 5000 + b'"]}'),
                                     "headers": {"content-type": "application/json"}}, 413, "too large"),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_bad_requests_get_a_clear_json_error_and_the_server_keeps_serving(client, name):
    kwargs, status, message = BAD_REQUESTS[name]
    response = client.post("/predict", **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert message in str(response.json()["detail"])
    assert client.post("/predict", json={"input": "the film good"}).status_code == 200


def test_model_errors_are_json_and_the_server_keeps_serving(client, monkeypatch):
    predictor = client.app.state.predictor
    real = predictor.predict
    for error, status in ((UserError("missing field 'context'"), 422), (RuntimeError("boom"), 500)):
        def failing(*args, error=error):
            raise error
        monkeypatch.setattr(predictor, "predict", failing)
        response = client.post("/predict", json={"input": "the film good"})
        assert response.status_code == status
        assert ("missing field" if status == 422 else "RuntimeError") in response.json()["detail"]
        monkeypatch.setattr(predictor, "predict", real)
        assert client.post("/predict", json={"input": "the film good"}).status_code == 200


def test_api_key(run_dir):
    with TestClient(create_app(run_dir, api_key="s3cret")) as c:
        body = {"input": "the film good"}
        assert c.post("/predict", json=body).status_code == 401
        assert c.post("/predict", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
        assert "X-API-Key" in c.get("/info").json()["detail"]
        assert c.post("/predict", json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/health").status_code == 200  # open, for load balancers
        # Refused before the body is read: a bad JSON body still gets 401, not 422.
        assert c.post("/predict", content=b"{not json", headers={"content-type": "application/json"}).status_code \
            == 401
    with TestClient(create_app(run_dir, api_key="s3cret", docs=True)) as c:
        assert c.get("/docs").status_code == 401 and c.get("/openapi.json").status_code == 401
        assert c.get("/openapi.json", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert str(run_dir) not in c.get("/openapi.json", headers={"X-API-Key": "s3cret"}).text


def test_concurrent_requests_are_batched_and_each_gets_its_own_slice(client, monkeypatch):
    predictor, batcher = client.app.state.predictor, client.app.state.batcher
    n = 8
    requests = [[f"the film good {i}", f"the food bad {i}"] for i in range(n)]
    expected = {p["text"]: p for p in predictor.predict([t for r in requests for t in r])}
    sizes: list[int] = []
    real = predictor.predict

    def counting(rows, batch_size=64):
        if not sizes:  # hold the first call (of one or more requests) until every other request is queued
            until(lambda: batcher.depth + len(rows) // 2 >= n)
        sizes.append(len(rows))
        return real(rows, batch_size)

    monkeypatch.setattr(predictor, "predict", counting)
    with ThreadPoolExecutor(n) as pool:
        responses = list(pool.map(lambda texts: client.post("/predict", json={"inputs": texts}), requests))

    assert len(sizes) < n
    assert sum(sizes) == 2 * n and max(sizes) > 2
    for texts, response in zip(requests, responses, strict=True):
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert [p["text"] for p in predictions] == texts
        for p in predictions:
            assert p["label"] == expected[p["text"]]["label"]
            assert p["probabilities"] == pytest.approx(expected[p["text"]]["probabilities"], abs=1e-4)


def blocked_app(run_dir, monkeypatch, **limits):
    """An app whose model call waits for `release`, so tests can fill the queue or run out the clock."""
    app = create_app(run_dir, **limits)
    entered, release = threading.Event(), threading.Event()
    real = app.state.predictor.predict

    def held(*args):
        entered.set()
        release.wait(30)
        return real(*args)

    monkeypatch.setattr(app.state.predictor, "predict", held)
    return app, entered, release


def test_a_full_queue_answers_503(run_dir, monkeypatch):
    app, entered, release = blocked_app(run_dir, monkeypatch, max_queue=1, max_batch_size=1)
    body = {"input": "the film good"}
    with TestClient(app) as c, ThreadPoolExecutor(2) as pool:
        running = pool.submit(c.post, "/predict", json=body)
        entered.wait(30)
        queued = pool.submit(c.post, "/predict", json=body)
        until(lambda: app.state.batcher.depth == 1)
        refused = c.post("/predict", json=body)
        release.set()
        assert refused.status_code == 503 and "busy" in refused.json()["detail"]
        assert running.result().status_code == 200 and queued.result().status_code == 200


def test_a_slow_prediction_answers_504_and_the_server_recovers(run_dir, monkeypatch):
    app, _, release = blocked_app(run_dir, monkeypatch, timeout_s=0.2)
    with TestClient(app) as c:
        late = c.post("/predict", json={"input": "the film good"})
        release.set()
        assert late.status_code == 504 and "0.2 s" in late.json()["detail"]
        assert c.post("/predict", json={"input": "the film good"}).status_code == 200


def test_serve_command_binds_this_machine_by_default_and_checks_the_path(tmp_path):
    from typer.testing import CliRunner

    from lmtune.cli import app

    help_text = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert "127.0.0.1" in help_text and "LMTUNE_API_KEY" in help_text
    result = CliRunner().invoke(app, ["serve", str(tmp_path)])  # fails before any server starts
    assert isinstance(result.exception, UserError) and "lmtune.json" in str(result.exception)


def test_the_key_can_come_from_a_file_so_that_ps_does_not_show_it(run_dir, tmp_path, monkeypatch, capsys):
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    (tmp_path / "key").write_text("fromfile\n")
    code, _, err = lmtune(monkeypatch, capsys, "serve", str(run_dir), "--api-key-file", str(tmp_path / "key"))
    assert code == 0, err
    assert served["host"] == "127.0.0.1"
    with TestClient(served["app"]) as c:
        assert c.get("/info").status_code == 401
        assert c.get("/info", headers={"X-API-Key": "fromfile"}).status_code == 200
    code, _, err = lmtune(monkeypatch, capsys, "serve", str(run_dir), "--api-key-file", str(tmp_path / "none"))
    assert code == 2 and "no key in it" in err
