"""lmtune.data_checks: the preview and the data report of a run, before any training, on tiny local models."""

from __future__ import annotations

import json
from pathlib import Path

from lmtune.data_checks import check_data, preview

CHAT = [{"role": "user", "content": "hello who are you"}, {"role": "assistant", "content": "I am a small test model"}]


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def reviews(tmp_path: Path) -> dict:
    """10 training rows with one exact duplicate, one text under two labels and one 32-token row; a validation
    file that repeats a training text."""
    rows = ["the film good,good", "the film bad,bad", "great food,good", "awful service,bad", "great food,good",
            "not good,bad", "not good,good", "love the film,good", "hate the service,bad",
            f"{'good ' * 30}film,good"]
    train = write(tmp_path / "train.csv", "review,sentiment\n" + "\n".join(rows) + "\n")
    validation = write(tmp_path / "dev.csv", "review,sentiment\nlove the film,good\nthe food bad,bad\n")
    return {"data": {"train": train, "validation": validation, "test_size": 0, "max_length": 16}}


def test_preview_finds_review_and_sentiment_as_training_does(tmp_path):
    found = preview(reviews(tmp_path), rows=3)
    assert found["columns"] == ["review", "sentiment"]
    assert found["rows"] == [["the film good", "good"], ["the film bad", "bad"], ["great food", "good"]]
    assert found["total_rows"] == 10
    assert found["detected"] == {"text_column": "review", "label_column": "sentiment"}
    assert found["how"] == ("columns: text='review', label='sentiment' (found by name; set "
                            "--text-column/--label-column to change)")
    assert "error" not in found
    json.dumps(found)


def test_preview_names_a_column_the_config_already_names(tmp_path):
    """waimai10k's `label,review`: the default label column needs no finding, but training reads it all the same."""
    data = write(tmp_path / "w.csv", "label,review\n1,很快，好吃，味道足\n0,送餐太慢了，菜也凉了\n")
    found = preview({"data": {"train": data}})
    assert found["detected"] == {"text_column": "review", "label_column": "label"}
    assert found["how"] == "columns: text='review' (found by name; set --text-column to change)"


def test_preview_gives_the_reason_when_the_columns_are_ambiguous(tmp_path):
    data = write(tmp_path / "two.csv", "first,second,label\nhello there friend,good day to you,a\n"
                                       "what a nice day,it is a fine one,b\n")
    found = preview({"data": {"train": data}})
    assert found["detected"] == {} and found["how"] is None
    assert "cannot tell which column holds the text" in found["error"]
    assert found["columns"] == ["first", "second", "label"] and found["total_rows"] == 2


def test_check_data_reports_what_training_would(tiny_bert, tmp_path):
    cfg = reviews(tmp_path)
    cfg["model"] = {"name": tiny_bert}
    result = check_data(cfg)
    json.dumps(result)
    assert result["task"] == "classification" and result["method"] == "full"
    assert result["model"] == {"name": tiny_bert, "chosen_by_lmtune": False, "why": None}
    assert result["rows"] == {"train": 10, "validation": 2}
    assert result["duplicates"] == {"train": 1, "validation": 0}
    assert result["label_conflicts"] == 1
    assert result["leakage"] == {"validation": 1}
    assert result["class_balance"] == {"train": {"bad": 4, "good": 6}, "validation": {"bad": 1, "good": 1}}
    lengths = result["lengths"]
    assert lengths["measured_rows"] == lengths["training_rows"] == 10
    assert lengths["percentiles"]["max"] == 33  # [CLS] + 30 x good + film + [SEP], measured without truncation
    assert (lengths["max_length"], lengths["truncated_rows"], lengths["truncated_share"]) == (16, 1, 0.1)
    assert sum(lengths["histogram"]["counts"]) == 10 and len(lengths["histogram"]["edges"]) <= 21
    assert result["unknown_token_rate"] == 0.0
    assert result["notes"][0].startswith("columns: text='review', label='sentiment'")
    warned = " ".join(result["warnings"])
    for expected in ("1 validation texts also occur in the training data", "1 training texts appear with more than "
                     "one label", "1 train rows repeat another train row", "10.0% of the training rows (1 of the 10 "
                     "measured) are longer than data.max_length=16", "The validation set has only 2 examples"):
        assert expected in warned


def test_the_loss_mask_scores_only_the_assistant_tokens(tiny_llama, tmp_path):
    chats = [CHAT, [{"role": "user", "content": "translate to French"}, {"role": "assistant", "content": "the cat"}]]
    data = write(tmp_path / "chats.jsonl", "".join(json.dumps({"messages": c}) + "\n" for c in chats * 5))
    cfg = {"task": {"name": "sft"}, "model": {"name": tiny_llama}, "data": {"train": data}}
    result = check_data(cfg)
    json.dumps(result)
    assert result["rows"] == {"train": 8, "validation": 1, "test": 1}
    assert result["length_limit"] == {"truncated": 0, "dropped": 0}
    assert result["lengths"]["truncated_rows"] == 0
    first = result["loss_mask"][0]
    assert "".join(t["token"] for t in first if t["scored"]) == "I am a small test model<|im_end|>\n"
    assert "hello who are you" in "".join(t["token"] for t in first if not t["scored"])
    assert len(result["loss_mask"]) == 2

    found = preview(cfg, rows=2)
    assert found["detected"] == {"chat_format": "messages"} and found["total_rows"] == 10
    assert [json.loads(row[0]) for row in found["rows"]] == chats


def test_chinese_reviews_one_token_a_character_unknown_to_an_english_vocabulary(tiny_bert, tmp_path):
    texts = {"这家餐厅很好吃": "好", "服务太慢了": "差", "味道不错下次再来": "好", "送餐很快": "好", "菜是凉的": "差",
             "价格便宜分量足": "好", "包装破了汤洒了": "差", "非常难吃": "差", "老板很热情": "好", "等了两个小时": "差"}
    train = write(tmp_path / "zh.csv", "评论,标签\n" + "".join(f"{t},{y}\n" for t, y in texts.items()))
    dev = write(tmp_path / "zh-dev.csv", "评论,标签\n很好吃,好\n太慢了,差\n")
    cfg = {"data": {"train": train, "validation": dev, "test_size": 0}}
    chars = sum(map(len, texts))
    english = check_data({**cfg, "model": {"name": tiny_bert}})
    assert english["columns"] == {"text_column": "评论", "label_column": "标签"}
    # BERT splits Chinese into single characters, each an [UNK] here: every row is [CLS] + characters + [SEP]
    assert english["unknown_token_rate"] == round(chars / (chars + 2 * len(texts)), 4)
    assert english["lengths"]["percentiles"]["max"] == max(map(len, texts)) + 2
    assert english["lengths"]["truncated_rows"] == 0
    assert any("unknown to the base model's tokenizer" in w and "multilingual-e5-small reads it" in w
               for w in english["warnings"])

    chinese = check_data({**cfg, "model": {"name": chinese_bert(tmp_path / "zh-bert", "".join(texts))}})
    assert chinese["unknown_token_rate"] == 0.0
    assert chinese["lengths"]["percentiles"] == english["lengths"]["percentiles"]
    assert not any("unknown to the base model's tokenizer" in w for w in chinese["warnings"])


def chinese_bert(folder: Path, text: str) -> str:
    """A BERT tokenizer (and config: no weights, which the checks never load) knowing the characters of `text`."""
    from transformers import BertConfig, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(text))]
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}).save_pretrained(folder)
    BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=64).save_pretrained(folder)
    return str(folder)
