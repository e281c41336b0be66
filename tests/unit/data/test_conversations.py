"""Reading SFT data: alpaca, messages, sharegpt and prompt-completion rows into one canonical chat each,
and the row-precise errors for malformed ones."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import shared_file

from lmtune.data.conversations import read_conversations
from lmtune.errors import DataError


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def system(text: str) -> dict:
    return {"role": "system", "content": text}


def write_json(path: Path, records: list) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def chats(df: pd.DataFrame) -> list:
    return df["messages"].tolist()


def assert_error(err: pytest.ExceptionInfo, path: Path, row: int, column: str, *words: str) -> None:
    message = str(err.value)
    assert str(path) in message
    assert f"row {row}" in message
    assert f"column {column!r}" in message
    for word in words:
        assert word in message


# --- each format ----------------------------------------------------------------------------------------------

def test_alpaca_json_list(tmp_path):
    path = write_json(tmp_path / "a.json", [
        {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour\n"},
    ])
    df = read_conversations(path)
    assert chats(df) == [
        [user("Add 2 and 3."), assistant("5")],
        [user("Translate to French.\n\nGood morning"), assistant("Bonjour\n")],  # contents kept as written
    ]
    assert list(df.columns) == ["messages"]
    assert list(df.index) == [1, 2]
    assert df.attrs["file"] == str(path)
    assert df.attrs["format"] == "alpaca"


def test_alpaca_system_and_history(tmp_path):
    path = write_json(tmp_path / "a.json", [
        {"instruction": "And 3 more?", "input": "", "output": "8", "system": "Be brief.",
         "history": [["What is 2+3?", "5"], ["Times 1?", "5"]]},
        {"instruction": "Hi", "output": "Hello", "system": "", "history": []},
    ])
    assert chats(read_conversations(path, "alpaca")) == [
        [system("Be brief."), user("What is 2+3?"), assistant("5"), user("Times 1?"), assistant("5"),
         user("And 3 more?"), assistant("8")],
        [user("Hi"), assistant("Hello")],  # a blank system column is no system prompt
    ]


def test_alpaca_prompt_only_in_input(tmp_path):
    path = write_json(tmp_path / "a.json", [{"instruction": " ", "input": "Summarise: x", "output": "x"}])
    assert chats(read_conversations(path)) == [[user("Summarise: x"), assistant("x")]]


def test_messages_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [
        {"messages": [system("You help."), user("Hi"), assistant("Hello!"), user("Bye"), assistant("Bye!")]},
        {"messages": [{"role": "user", "content": "2+2?", "name": "x"}, assistant("4")]},
    ])
    df = read_conversations(path)
    assert df.attrs["format"] == "messages"
    assert chats(df) == [
        [system("You help."), user("Hi"), assistant("Hello!"), user("Bye"), assistant("Bye!")],
        [user("2+2?"), assistant("4")],  # extra keys dropped
    ]


def test_messages_csv_with_json_strings(tmp_path):
    path = tmp_path / "m.csv"
    pd.DataFrame({"messages": [json.dumps([user("Hi, there"), assistant("Hello")]),
                               json.dumps([user("Q"), assistant("A")])]}).to_csv(path, index=False)
    df = read_conversations(path)
    assert df.attrs["format"] == "messages"
    assert chats(df) == [[user("Hi, there"), assistant("Hello")], [user("Q"), assistant("A")]]


def test_messages_parquet(tmp_path):
    path = tmp_path / "m.parquet"
    pd.DataFrame({"messages": [[system("S"), user("Hi"), assistant("Hello")], [user("Q"), assistant("A")]]}) \
        .to_parquet(path)
    assert chats(read_conversations(path)) == [[system("S"), user("Hi"), assistant("Hello")],
                                               [user("Q"), assistant("A")]]


def test_alpaca_parquet_history(tmp_path):
    path = tmp_path / "a.parquet"
    pd.DataFrame({"instruction": ["Q2"], "input": [None], "output": ["A2"], "history": [[["Q1", "A1"]]]}) \
        .to_parquet(path)
    assert chats(read_conversations(path)) == [[user("Q1"), assistant("A1"), user("Q2"), assistant("A2")]]


def test_sharegpt(tmp_path):
    path = write_json(tmp_path / "s.json", [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"},
                           {"from": "user", "value": "More"}, {"from": "model", "value": "Sure"}]},
        {"conversations": [{"from": "system", "value": "Be kind."}, {"from": "human", "value": "Q"},
                           {"from": "assistant", "value": "A"}]},
        {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}], "system": "Top."},
    ])
    df = read_conversations(path)
    assert df.attrs["format"] == "sharegpt"
    assert chats(df) == [
        [user("Hi"), assistant("Hello"), user("More"), assistant("Sure")],
        [system("Be kind."), user("Q"), assistant("A")],
        [system("Top."), user("Q"), assistant("A")],
    ]


def test_sharegpt_tsv_with_json_strings(tmp_path):
    path = tmp_path / "s.tsv"
    turns = json.dumps([{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}])
    path.write_text(f"conversations\tsystem\n{turns}\tBe kind.\n", encoding="utf-8")
    assert chats(read_conversations(path, "sharegpt")) == [[system("Be kind."), user("Hi"), assistant("Hello")]]


def test_prompt_completion(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "The sky is", "completion": " blue."}])
    df = read_conversations(path)
    assert df.attrs["format"] == "prompt-completion"
    assert chats(df) == [[user("The sky is"), assistant(" blue.")]]


# --- detection and options ------------------------------------------------------------------------------------

def test_auto_detection_priority(tmp_path):
    # messages wins over instruction/output; conversations wins over prompt/completion.
    both = write_jsonl(tmp_path / "both.jsonl", [{"messages": [user("M"), assistant("m")], "instruction": "I",
                                                   "output": "o"}])
    assert read_conversations(both).attrs["format"] == "messages"
    other = write_jsonl(tmp_path / "other.jsonl", [{"conversations": [{"from": "human", "value": "C"},
                                                                      {"from": "gpt", "value": "c"}],
                                                    "prompt": "P", "completion": "p"}])
    assert chats(read_conversations(other)) == [[user("C"), assistant("c")]]
    assert chats(read_conversations(other, "prompt-completion")) == [[user("P"), assistant("p")]]


def test_auto_detection_fails_with_help(tmp_path):
    path = write_json(tmp_path / "x.json", [{"question": "q", "answer": "a"}])
    with pytest.raises(DataError) as err:
        read_conversations(path)
    message = str(err.value)
    assert str(path) in message
    assert "question, answer" in message
    for words in ("alpaca (instruction, output)", "messages (messages)", "sharegpt (conversations)",
                  "prompt-completion (prompt, completion)"):
        assert words in message


def test_explicit_format_missing_column(tmp_path):
    path = write_json(tmp_path / "x.json", [{"instruction": "q"}])
    with pytest.raises(DataError, match="column 'output' not found.*this file has: instruction"):
        read_conversations(path, "alpaca")


def test_unknown_chat_format(tmp_path):
    path = write_json(tmp_path / "x.json", [{"prompt": "q", "completion": "a"}])
    with pytest.raises(DataError, match="unknown chat format 'chatml'"):
        read_conversations(path, "chatml")


def test_data_format_and_header_are_passed_to_the_reader(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("Hi,Hello\n", encoding="utf-8")
    with pytest.raises(DataError, match="column 'prompt' not found"):
        read_conversations(path, "prompt-completion", data_format="csv", header=False)
    path.write_text("prompt,completion\nHi,Hello\n", encoding="utf-8")
    assert chats(read_conversations(path, data_format="csv")) == [[user("Hi"), assistant("Hello")]]


def test_default_system_prompt_only_where_absent(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [
        {"messages": [user("Hi"), assistant("Hello")]},
        {"messages": [system("Own."), user("Hi"), assistant("Hello")]},
        {"messages": [system("  "), user("Hi"), assistant("Hello")]},  # blank: no system prompt
    ])
    assert chats(read_conversations(path, system="Default.")) == [
        [system("Default."), user("Hi"), assistant("Hello")],
        [system("Own."), user("Hi"), assistant("Hello")],
        [system("Default."), user("Hi"), assistant("Hello")],
    ]
    assert chats(read_conversations(path))[0] == [user("Hi"), assistant("Hello")]


def test_default_system_prompt_alpaca(tmp_path):
    path = write_json(tmp_path / "a.json", [{"instruction": "Q", "output": "A"},
                                            {"instruction": "Q", "output": "A", "system": "Own."}])
    assert chats(read_conversations(path, system="Default.")) == [[system("Default."), user("Q"), assistant("A")],
                                                                  [system("Own."), user("Q"), assistant("A")]]


# --- malformed rows: each names the file, the row and the column -------------------------------------------------

GOOD = {"messages": [user("Hi"), assistant("Hello")]}


def messages_error(tmp_path: Path, bad: object) -> pytest.ExceptionInfo:
    """Row 2 of a messages file holds `bad`; the error it raises."""
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD, {"messages": bad}, GOOD])
    with pytest.raises(DataError) as err:
        read_conversations(path)
    assert_error(err, path, 2, "messages")
    return err


@pytest.mark.parametrize("record, column", [
    ({"instruction": None, "output": "A"}, "instruction"),
    ({"instruction": "Q", "output": 5}, "output"),
    ({"instruction": "Q"}, "output"),
    ({"instruction": "Q", "output": "A", "input": ["x"]}, "input"),
    ({"instruction": "Q", "output": "A", "system": 1}, "system"),
])
def test_alpaca_missing_or_not_string(tmp_path, record, column):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"instruction": "Q", "output": "A"}, record])
    with pytest.raises(DataError) as err:
        read_conversations(path, "alpaca")
    assert_error(err, path, 2, column)


def test_prompt_completion_missing(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "P", "completion": "C"}, {"prompt": "P"}])
    with pytest.raises(DataError) as err:
        read_conversations(path)
    assert_error(err, path, 2, "completion", "missing")


@pytest.mark.parametrize("bad, words", [(None, "missing"), ({"role": "user"}, "must be a list"),
                                        (7, "must be a list"), ([], "no turns")])
def test_nested_cell_not_a_list(tmp_path, bad, words):
    messages_error(tmp_path, bad).match(words)


def test_bad_json_string_in_csv(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"messages": [json.dumps([user("Q"), assistant("A")]), '[{"role": "user", ']}) \
        .to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        read_conversations(path)
    assert_error(err, path, 2, "messages", "not valid JSON")


def test_bad_json_history_in_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('instruction,output,history\nQ,A,"[[""q"", ""a""]]"\nQ,A,[[oops\n', encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_conversations(path)
    assert_error(err, path, 2, "history", "not valid JSON")


def test_turn_not_an_object(tmp_path):
    messages_error(tmp_path, [user("Hi"), "Hello"]).match("turn 2: expected an object")


@pytest.mark.parametrize("turn, words", [({"content": "x"}, "turn 2 has no 'role'"),
                                         ({"role": "assistant"}, "turn 2 has no 'content'"),
                                         ({"role": "assistant", "content": None}, "turn 2: 'content' must be a string"),
                                         ({"role": "assistant", "content": [{"type": "text", "text": "x"}]},
                                          "turn 2: 'content' must be a string")])
def test_turn_lacks_role_or_content(tmp_path, turn, words):
    messages_error(tmp_path, [user("Hi"), turn]).match(words)


def test_unknown_role(tmp_path):
    messages_error(tmp_path, [user("Hi"), assistant("call"), {"role": "tool", "content": "42"},
                              assistant("42")]).match("turn 3: unknown role 'tool'")


def test_sharegpt_unknown_role_and_missing_value(tmp_path):
    path = write_json(tmp_path / "s.json", [{"conversations": [{"from": "human", "value": "Q"},
                                                               {"from": "observation", "value": "A"}]}])
    with pytest.raises(DataError) as err:
        read_conversations(path)
    assert_error(err, path, 1, "conversations", "turn 2: unknown role 'observation'")
    write_json(path, [{"conversations": [{"from": "human", "text": "Q"}]}])
    with pytest.raises(DataError) as err:
        read_conversations(path)
    assert_error(err, path, 1, "conversations", "turn 1 has no 'value'")


def test_sharegpt_system_twice(tmp_path):
    path = write_json(tmp_path / "s.json", [{"system": "S", "conversations": [
        {"from": "system", "value": "T"}, {"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}])
    with pytest.raises(DataError) as err:
        read_conversations(path)
    assert_error(err, path, 1, "system", "keep one")


@pytest.mark.parametrize("bad, words", [
    ([user("Q"), assistant("A"), system("S")], "turn 3: a system message may only come first"),
    ([system("S"), system("T"), user("Q"), assistant("A")], "turn 2: a system message may only come first"),
    ([assistant("A")], "turn 1: expected a user turn, got assistant"),
    ([user("Q"), user("Q2"), assistant("A")], "turn 2: expected an assistant turn, got user"),
    ([user("Q"), assistant("A"), assistant("B")], "turn 3: expected a user turn, got assistant"),
    ([user("Q"), assistant("A"), user("Q2")], "turn 3: the chat ends with a user turn"),
    ([system("S")], "turn 1: the chat ends with a system turn"),
])
def test_wrong_order(tmp_path, bad, words):
    messages_error(tmp_path, bad).match(words)


@pytest.mark.parametrize("bad, words", [([user("Q"), assistant(" \n")], "turn 2: the assistant turn is empty"),
                                        ([user(""), assistant("A")], "turn 1: the user turn is empty")])
def test_empty_turn(tmp_path, bad, words):
    messages_error(tmp_path, bad).match(words)


@pytest.mark.parametrize("record, column, words", [
    ({"instruction": "Q", "output": "  "}, "output", "the assistant turn is empty"),
    ({"instruction": "", "input": " ", "output": "A"}, "instruction", "the user turn is empty"),
    ({"instruction": "Q", "output": "A", "history": [["q", ""]]}, "history", "history pair 1: the assistant turn"),
    ({"instruction": "Q", "output": "A", "history": [["q"]]}, "history", "history pair 1: expected [user, assistant]"),
    ({"instruction": "Q", "output": "A", "history": "[1, 2]"}, "history", "history pair 1: expected"),
])
def test_alpaca_bad_turns(tmp_path, record, column, words):
    path = write_json(tmp_path / "a.json", [{"instruction": "Q", "output": "A"}, record])
    with pytest.raises(DataError) as err:
        read_conversations(path)
    assert_error(err, path, 2, column, words)


def test_prompt_completion_empty(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "\t", "completion": "C"}])
    with pytest.raises(DataError) as err:
        read_conversations(path)
    assert_error(err, path, 1, "prompt", "the user turn is empty")


# --- the shared demo data ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, rows", [("identity.json", 91), ("alpaca_en_demo.json", 999)])
def test_shared_instruct_data(name, rows):
    df = read_conversations(shared_file(f"instruct/{name}"))
    assert df.attrs["format"] == "alpaca"
    assert len(df) == rows
    assert list(df.index) == list(range(1, rows + 1))
    for chat in df["messages"]:
        assert [m["role"] for m in chat] == ["user", "assistant"]
