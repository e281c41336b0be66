"""The UI's HTTP side: limits, the key, run folders, uploads, and a run trained through its queue."""

from __future__ import annotations

import json
import time

import pytest
from conftest import lmtune
from fastapi.testclient import TestClient

from lmtune.recipe import train
from lmtune.ui import create_ui, files
from lmtune.ui.jobs import progress

LOCAL = "http://127.0.0.1:7860"  # the address a browser on this machine uses (TestClient's default is another)


@pytest.fixture
def client(tmp_path):
    with TestClient(create_ui(tmp_path / "runs", data_root=tmp_path), base_url=LOCAL) as found:
        yield found


def test_the_page_and_its_files_come_from_the_app_itself(client):
    page = client.get("/").text
    assert "/static/app.js" in page and "http" not in page.replace("http://www.w3.org", "")
    for name in ("app.js", "chart.js", "i18n.js", "style.css"):
        text = client.get(f"/static/{name}").text
        assert "https://" not in text.replace("http://www.w3.org/2000/svg", "") and "@import" not in text


def test_config_gives_yaml_and_command_or_the_schema_error(client):
    found = client.post("/api/config", json={"train": {"lr": 3e-5}}).json()
    assert found["command"] == "lmtune train --lr 3e-05" and "lr: 3.0e-05" in found["yaml"]
    wrong = client.post("/api/config", json={"train": {"lrr": 1}})
    assert wrong.status_code == 422 and "did you mean 'train.lr'" in wrong.json()["detail"]
    wrong_task_key = client.post("/api/config", json={"task": {"name": "sft", "threshold": 0.3}})
    assert wrong_task_key.status_code == 422 and "threshold" in wrong_task_key.json()["detail"]


def test_an_upload_is_kept_under_the_runs_folder_and_bounded(client, tmp_path, monkeypatch):
    saved = client.post("/api/upload?filename=../my%20reviews.csv", content=b"text,label\nok,1\n").json()["path"]
    assert saved == str(tmp_path / "runs" / ".ui" / "uploads" / "my_reviews.csv")
    again = client.post("/api/upload?filename=my reviews.csv", content=b"text,label\n").json()["path"]
    assert again.endswith("my_reviews-2.csv")
    assert client.post("/api/upload?filename=x.exe", content=b"MZ").status_code == 415
    monkeypatch.setattr(files, "MAX_UPLOAD_BYTES", 10)
    assert client.post("/api/upload?filename=big.csv", content=b"x" * 100).status_code == 413
    assert not list((tmp_path / "runs" / ".ui" / "uploads").glob("*big*"))  # nor a partial file
    labels = [f["label"] for f in client.get("/api/files").json()["files"]]
    assert labels[0] == "demo reviews (bundled)" and "upload: my_reviews.csv" in labels


def test_requests_other_than_uploads_are_bounded(client):
    assert client.post("/api/config", content=b"{" + b" " * 2_000_000 + b"}",
                       headers={"content-type": "application/json"}).status_code == 413


def test_only_this_machines_names_reach_a_loopback_ui(client):
    assert client.get("/api/meta").status_code == 200
    assert client.get("/api/meta", headers={"host": "evil.example:7860"}).status_code == 400


def test_a_ui_on_another_address_needs_its_key(tmp_path):
    with TestClient(create_ui(tmp_path / "runs", api_key="s3cret", host="0.0.0.0")) as client:
        assert client.get("/").status_code == 401 and client.get("/api/meta").status_code == 401
        assert client.get("/api/meta", headers={"x-api-key": "s3cret"}).status_code == 200
        assert client.get("/?key=wrong", follow_redirects=False).status_code == 401
        login = client.get("/?key=s3cret", follow_redirects=False)
        assert login.status_code == 303 and "HttpOnly" in login.headers["set-cookie"]
        assert client.get("/api/meta").status_code == 200  # the cookie now travels with each request


def test_the_cli_refuses_another_address_without_a_key(monkeypatch, capsys):
    monkeypatch.delenv("LMTUNE_API_KEY", raising=False)
    code, _, err = lmtune(monkeypatch, capsys, "ui", "--host", "0.0.0.0")
    assert code == 2 and "LMTUNE_API_KEY" in err


def test_run_names_stay_inside_the_runs_folder(client, tmp_path):
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "config.yaml").write_text("name: secret\n")
    for name in ("..", "../secret", ".ui", "%2e%2e"):
        assert client.get(f"/runs/{name}/report").status_code == 404
        assert client.delete(f"/api/runs/{name}?confirm={name}").status_code in (404, 405)
    assert (tmp_path / "secret").exists()


def test_progress_and_eta_come_from_the_train_log(tmp_path):
    (tmp_path / "train_log.jsonl").write_text(
        '{"step": 5, "total_steps": 20, "loss": 0.7, "elapsed": 2.0}\n'
        '{"step": 10, "epoch": 0.5, "eval": {"accuracy": 0.6, "n": 4}}\n'
        '{"step": 10, "total_steps": 20, "loss": 0.5, "elapsed": 4.0}\n')
    found = progress(tmp_path, "accuracy")
    assert found["step"] == 10 and found["total_steps"] == 20 and found["eta_seconds"] == 4.0
    assert found["loss"] == [[5, 0.7], [10, 0.5]] and found["evals"] == [[10, 0.6]]
    assert progress(tmp_path / "none", None)["step"] is None


def test_a_run_trains_through_the_queue_and_is_listed_compared_tried_and_deleted(tmp_path, tiny_bert):
    rows = "".join(f"the film {'good' if i % 2 else 'bad'} {i},{'pos' if i % 2 else 'neg'}\n" for i in range(40))
    (tmp_path / "d.csv").write_text("review,sentiment\n" + rows)
    values = {"name": "ui-run", "model": {"name": tiny_bert},
              "data": {"train": str(tmp_path / "d.csv"), "max_length": 16},
              "train": {"max_steps": 6, "batch_size": 8, "log_every": 2}, "task": {"explanations": 0}}
    with TestClient(create_ui(tmp_path / "runs", data_root=tmp_path), base_url=LOCAL) as client:
        first = client.post("/api/jobs", json=values).json()["id"]
        second = client.post("/api/jobs", json=values).json()["id"]
        assert client.post(f"/api/jobs/{second}/stop").json()["state"] == "cancelled"  # still queued: dropped
        deadline = time.time() + 240
        while (job := _job(client, first))["state"] in ("queued", "running") and time.time() < deadline:
            time.sleep(0.5)
        assert job["state"] == "finished", job["output"]
        assert job["step"] == job["total_steps"] == 6 and [s for s, _ in job["loss"]] == [2, 4, 6]
        assert job["metric"] == "accuracy" and job["evals"]
        runs = client.get("/api/runs").json()
        assert [r["name"] for r in runs["runs"]] == ["ui-run"] and runs["runs"][0]["state"] == "finished"
        assert runs["tables"][0]["rows"][0][1].endswith("ui-run")
        assert "lmtune run report: ui-run" in client.get("/runs/ui-run/report").text
        tried = client.post("/api/runs/ui-run/predict", json={"text": "the film good"}).json()
        assert tried["prediction"]["label"] in ("pos", "neg")
        assert "".join(tried["explanation"]["fields"][0]["text"]) == "the film good"
        exported = client.post("/api/runs/ui-run/export", json={"int8": True}).json()
        assert exported["quantized"] and (tmp_path / "runs" / "ui-run" / "onnx" / "model.int8.onnx").exists()
        assert client.get("/api/runs").json()["runs"][0]["onnx"]
        assert client.delete("/api/runs/ui-run").status_code == 400  # no confirmation
        assert client.delete("/api/runs/ui-run?confirm=ui-run").json() == {"deleted": "ui-run"}
        assert not (tmp_path / "runs" / "ui-run").exists()


def test_a_decoder_run_answers_in_a_stream(tmp_path, tiny_llama):
    chats = [{"instruction": f"hello who are you {i}", "input": "", "output": "I am a small test model"}
             for i in range(8)]
    (tmp_path / "chats.json").write_text(json.dumps(chats), encoding="utf-8")
    train({"name": "chat", "output_dir": str(tmp_path / "runs"), "task": {"name": "sft"},
           "model": {"name": tiny_llama}, "data": {"train": str(tmp_path / "chats.json"), "max_length": 64},
           "train": {"max_steps": 2, "min_steps": None, "batch_size": 4}})
    with TestClient(create_ui(tmp_path / "runs"), base_url=LOCAL) as client:
        assert client.get("/api/runs").json()["runs"][0]["kind"] == "decoder"
        with client.stream("POST", "/api/runs/chat/chat", json={"messages": [{"role": "user", "content": "hello"}],
                                                                  "max_new_tokens": 8}) as answer:
            assert answer.status_code == 200
            pieces = list(answer.iter_text())
        assert "".join(pieces)  # whatever a random model says, it says something
        no_question = client.post("/api/runs/chat/chat", json={"messages": [{"role": "assistant", "content": "hi"}]})
        assert no_question.status_code == 422


def _job(client, job_id: int) -> dict:
    return next(j for j in client.get("/api/jobs").json()["jobs"] if j["id"] == job_id)
