import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from transformers import AutoTokenizer

from lmtune.api import Predictor, evaluate, train
from lmtune.config import DataConfig, TaskConfig
from lmtune.data.squad import article_of, read_squad, split_by_article
from lmtune.errors import DataError
from lmtune.evaluation.squad import (
    best_span,
    exact_match,
    f1,
    longest_common_run,
    normalize_answer,
    question_scores,
    segments,
    squad_metrics,
    written_without_spaces,
)
from lmtune.tasks.question_answering import QuestionAnswering, span_labels


def squad_file(path: Path, articles: dict[str, list[tuple[str, list[tuple[str, str, int]]]]]) -> Path:
    """articles: title -> [(context, [(id, question, answer_start)])]; answers run to the next space."""
    data = []
    for title, paragraphs in articles.items():
        data.append({"title": title, "paragraphs": [
            {"context": context, "qas": [
                {"id": qid, "question": question,
                 "answers": [{"answer_start": start, "text": context[start:].split(" ")[0]}]}
                for qid, question, start in qas]}
            for context, qas in paragraphs]})
    path.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")
    return path


def task() -> QuestionAnswering:
    return QuestionAnswering(TaskConfig(name="question-answering", max_answer_length=30, n_best=20))


def one_question(context: str, answer: str, qid: str = "q1") -> pd.DataFrame:
    return pd.DataFrame({"id": [qid], "title": ["t"], "context": [context], "question": ["q?"],
                         "answers": [[{"text": answer, "answer_start": context.index(answer)}]]}, index=[1])


# -- windows and labels ------------------------------------------------------------------------------


@pytest.mark.parametrize(("context", "answer", "labels"), [
    # The fixture tokenises by character: [CLS] q ? [SEP] then 11 context tokens per window of 16, and
    # consecutive windows share 4 tokens. "ff gg" starts in the last token of window 1 (straddles its edge),
    # sits whole at tokens 7..10 of window 2, and is absent from window 3.
    ("aa bb cc dd ee ff gg hh ii jj kk ll", "ff gg", [[0, 0], [7, 10], [0, 0]]),
    # "e ff" ends on the last context token (14) of window 1 and starts on the first one after the
    # overlap's "##d" in window 2.
    ("aa bb cc dd e ff gg hh ii jj kk", "e ff", [[12, 14], [5, 7], [0, 0]]),
])
def test_windows_label_the_answer_only_where_it_is_whole(tiny_bert, context, answer, labels):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    features = task().encode(one_question(context, answer), tokenizer, DataConfig(max_length=16, doc_stride=4))
    assert [f["labels"] for f in features] == labels
    for f in features:
        assert f["example"] == 0
        assert f["offsets"][:4] == [None] * 4 and f["offsets"][-1] is None  # question and special tokens
        start, end = f["labels"]
        if start:
            assert context[f["offsets"][start][0]:f["offsets"][end][1]] == answer


def test_span_labels_cls_when_answer_outside_window():
    offsets = [None, (0, 2), (3, 5), None]
    assert span_labels(offsets, 3, 5, cls_index=0) == [2, 2]
    assert span_labels(offsets, 6, 8, cls_index=0) == [0, 0]  # after the window
    assert span_labels(offsets, 3, 8, cls_index=0) == [0, 0]  # only partly inside


def test_question_too_long_for_the_stride_is_a_data_error(tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    rows = one_question("aa bb cc dd", "bb").assign(question=["why " * 5])
    rows.attrs["file"] = "qa.json"
    with pytest.raises(DataError, match=r"qa.json, row 1.*question id 'q1' takes \d+ tokens.*doc_stride=4"):
        task().encode(rows, tokenizer, DataConfig(max_length=16, doc_stride=4))


# -- post-processing ---------------------------------------------------------------------------------


def window(start: dict[int, float], end: dict[int, float], offsets: list) -> tuple[np.ndarray, list]:
    logits = np.full((len(offsets), 2), -10.0, dtype=np.float32)  # every token not named is unlikely
    for i, v in start.items():
        logits[i, 0] = v
    for i, v in end.items():
        logits[i, 1] = v
    return logits, offsets


CONTEXT = "Paris is the capital of France."
#                 [CLS]  Paris   is      the      capital   of        France    .         [SEP]
OFFSETS = [None, (0, 5), (6, 8), (9, 12), (13, 20), (21, 23), (24, 30), (30, 31), None]


def test_best_span_maps_tokens_to_exact_characters():
    found = best_span(CONTEXT, [window({3: 4.0, 1: 1.0}, {4: 4.0, 6: 2.0}, OFFSETS)], n_best=20,
                      max_answer_length=30)
    assert found["answer"] == "the capital" == CONTEXT[found["start"]:found["end"]]
    assert (found["start"], found["end"]) == (9, 20)
    assert 0.5 < found["score"] <= 1


def test_best_span_skips_question_tokens_reversed_and_too_long_spans():
    # The highest logits sit on [CLS]/[SEP] (outside the context); 1..4 (score 14) is 4 tokens, over the limit
    # of 3; 6..4 (13) and 5..4 (11) end before they start; the best legal span is 6..6 "France" (8).
    logits = window({0: 9.0, 1: 6.0, 6: 5.0, 5: 3.0}, {8: 9.0, 4: 8.0, 6: 3.0}, OFFSETS)
    found = best_span(CONTEXT, [logits], n_best=20, max_answer_length=3)
    assert found["answer"] == "France"


def test_best_span_picks_the_best_window():
    weak = window({1: 1.0}, {1: 1.0}, OFFSETS)
    strong = window({6: 5.0}, {7: 5.0}, OFFSETS)
    assert best_span(CONTEXT, [weak, strong], n_best=20, max_answer_length=30)["answer"] == "France."


def test_best_span_without_context_tokens_is_empty():
    found = best_span(CONTEXT, [window({0: 1.0}, {0: 1.0}, [None, None])], n_best=20, max_answer_length=30)
    assert found == {"answer": "", "start": 0, "end": 0, "score": 0.0}


# -- metrics -----------------------------------------------------------------------------------------


def test_normalisation_drops_case_punctuation_articles_and_extra_space():
    assert normalize_answer("  The Eiffel-Tower, in  a PARIS! ") == "eiffeltower in paris"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words
    assert normalize_answer("北京 大学。", by_char=True) == "北京大学"


def test_exact_match_and_partial_f1():
    assert exact_match("The Eiffel Tower", "eiffel tower.") == 1.0
    assert exact_match("Eiffel", "eiffel tower") == 0.0
    # "the cat sat on the mat" -> cat sat on mat; "a cat on a mat" -> cat on mat. 3 tokens shared:
    # precision 3/4, recall 3/3, F1 = 2 * 0.75 * 1 / 1.75 = 6/7.
    assert f1("the cat sat on the mat", "a cat on a mat") == pytest.approx(6 / 7)
    assert f1("dog", "cat") == 0.0


def test_chinese_is_scored_by_characters():
    # 北京大学 vs 北京: 2 shared characters, precision 2/4, recall 2/2, F1 = 2 * 0.5 * 1 / 1.5 = 2/3.
    assert question_scores("北京大学", ["北京"], by_char=True) == (0.0, pytest.approx(2 / 3))
    assert question_scores("北京 。", ["北京"], by_char=True) == (1.0, 1.0)
    # Whitespace tokens would see one word "北京大学" against "北京" and score 0.
    assert f1("北京大学", "北京") == 0.0
    # A numeric answer in a Chinese text: CMRC segments "308分" as "308", "分" (digits stay one segment), so
    # against "308" precision 1/2, recall 1/1, F1 = 2 * 0.5 * 1 / 1.5 = 2/3.
    assert f1("308分", "308", by_char=True) == pytest.approx(2 / 3)


def test_chinese_scoring_follows_cmrc_2018():
    # Chinese and English punctuation and CMRC's symbols go before exact match: 《》，. ! + ~
    assert exact_match("《红楼梦》", "红楼梦", by_char=True) == 1.0
    assert exact_match("1+1=2!", "112", by_char=True) == 1.0
    assert segments("Apple公司，2010年") == ["apple", "公", "司", "2010", "年"]
    # F1 counts the longest common *contiguous* run of segments, not a bag: 北京大学 vs 大学北京 share the
    # runs 北京 and 大学 (2 each), so precision 2/4, recall 2/4, F1 = 0.5 (a bag of characters would give 1.0).
    assert f1("北京大学", "大学北京", by_char=True) == pytest.approx(0.5)
    assert longest_common_run(list("abcxbcd"), list("zbcdz")) == 3
    # The best gold counts: 位于上海市 vs 上海 is run 2 (precision 2/5, recall 1, F1 4/7); vs 上海市 run 3
    # (precision 3/5, recall 1, F1 = 2 * 0.6 * 1 / 1.6 = 0.75).
    assert question_scores("位于上海市。", ["上海", "上海市"], by_char=True) == (0.0, pytest.approx(2 * 0.6 / 1.6))


def test_character_scoring_is_chosen_by_the_context():
    assert written_without_spaces("黑豹队的防守只丢了 308分，在联赛中排名第六 (NFL)")
    assert not written_without_spaces("The Panthers, coached by 罗恩·里维拉, gave up just 308 points.")


def test_scores_take_the_best_gold_answer():
    assert question_scores("Denver Broncos", ["Broncos", "the Denver Broncos"]) == (1.0, 1.0)
    metrics = squad_metrics(["Broncos", "nothing"], [["Denver Broncos"], ["Panthers"]], [False, False])
    # F1 of "Broncos" vs "Denver Broncos": precision 1, recall 1/2 -> 2/3; mean over two questions = 1/3.
    assert metrics == {"exact_match": 0.0, "f1": pytest.approx(1 / 3), "questions": 2}


# -- reading and splitting ---------------------------------------------------------------------------


def test_squad_json_reader_keeps_ids_titles_and_answers(tmp_path):
    path = squad_file(tmp_path / "qa.json", {"Tea": [("tea comes from china", [("a1", "from where?", 15)])]})
    df = read_squad(path)
    assert list(df.columns) == ["id", "title", "context", "question", "answers"]
    assert df.loc[1].to_dict() == {"id": "a1", "title": "Tea", "context": "tea comes from china",
                                   "question": "from where?", "answers": [{"text": "china", "answer_start": 15}]}
    assert df.attrs["file"] == str(path)


def test_wrong_answer_start_names_the_file_and_question(tmp_path):
    path = squad_file(tmp_path / "qa.json", {"Tea": [("tea comes from china", [("a1", "q?", 15), ("a2", "q?", 4)])]})
    data = json.loads(path.read_text())
    data["data"][0]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] = 5
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"qa.json, row 2.*question id 'a2'.*expected 'comes', found 'omes '"):
        read_squad(path)


def test_missing_question_names_the_id(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"id": "x9", "context": "abc", "question": " ", "answers": []}) + "\n")
    with pytest.raises(DataError, match="question id 'x9' has no question"):
        read_squad(path, labelled=False)  # an input to predict must get its answer


def test_a_labelled_question_without_text_is_left_out_with_a_warning(tmp_path):
    path = squad_file(tmp_path / "qa.json", {"Tea": [("tea comes from china", [("a1", "q?", 15), ("a2", " ", 4)])]})
    with pytest.warns(UserWarning, match=r"qa.json, row 2: question id 'a2' has no question text; left out"):
        rows = read_squad(path)
    assert rows["id"].tolist() == ["a1"]


def test_datasets_style_jsonl_csv_and_parquet_read_alike(tmp_path):
    record = {"id": "r1", "context": "tea comes from china", "question": "from where?",
              "answers": {"text": ["china"], "answer_start": [15]}}
    (tmp_path / "qa.jsonl").write_text(json.dumps(record) + "\n")
    listed = {**record, "answers": json.dumps([{"text": "china", "answer_start": 15}])}
    pd.DataFrame([listed]).to_csv(tmp_path / "qa.csv", index=False)
    pd.DataFrame([record]).to_parquet(tmp_path / "qa.parquet")
    for name in ("qa.jsonl", "qa.csv", "qa.parquet"):
        df = read_squad(tmp_path / name)
        assert df.loc[1, "answers"] == [{"text": "china", "answer_start": 15}], name
        assert df.loc[1, "id"] == "r1" and df.loc[1, "title"] is None


def test_split_by_article_never_shares_an_article():
    rng = random.Random(0)
    titles = [f"t{i}" for i in range(12) for _ in range(rng.randint(1, 9))]
    df = pd.DataFrame({"id": [str(i) for i in range(len(titles))], "title": titles, "context": titles,
                       "question": "q", "answers": None}, index=pd.RangeIndex(1, len(titles) + 1))
    splits = split_by_article(df, 0.25, 0.25, seed=3)
    groups = {name: set(article_of(part)) for name, part in splits.items()}
    assert [len(g) for g in groups.values()] == [6, 3, 3]
    assert not (groups["train"] & groups["validation"] or groups["train"] & groups["test"]
                or groups["validation"] & groups["test"])
    assert sorted(i for part in splits.values() for i in part.index) == list(df.index)
    again = split_by_article(df, 0.25, 0.25, seed=3)
    assert all(splits[k].index.equals(again[k].index) for k in splits)


# -- end to end --------------------------------------------------------------------------------------


def numbers_dataset(path: Path, articles: int = 8, seed: int = 0) -> Path:
    """Contexts of filler words with one number; the question always asks for the number."""
    rng = random.Random(seed)
    words = ["good", "bad", "film", "food", "service", "love", "hate", "not"]
    data = {}
    for a in range(articles):
        paragraphs = []
        for p in range(3):
            left = " ".join(rng.choices(words, k=rng.randint(1, 6)))
            number = str(rng.randint(10, 999))
            right = " ".join(rng.choices(words, k=rng.randint(1, 6)))
            context = f"{left} {number} {right}"
            paragraphs.append((context, [(f"a{a}p{p}", "the number?", len(left) + 1)]))
        data[f"article {a}"] = paragraphs
    return squad_file(path, data)


def test_train_evaluate_and_predict_end_to_end(tiny_bert, tmp_path):
    data = numbers_dataset(tmp_path / "numbers.json", articles=20)
    run = train({"name": "qa", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_bert},
                 "task": {"name": "question-answering"},
                 "data": {"train": str(data), "max_length": 48, "doc_stride": 8, "validation_size": 0.2,
                          "test_size": 0},
                 "train": {"max_steps": 60, "batch_size": 8, "lr": 3e-3, "eval_every": 60, "eval_before": True,
                           "seed": 1}})
    metrics = run.metrics
    assert metrics["data"]["articles"] == {"train": 16, "validation": 4}
    assert metrics["data"]["leakage"] == {"validation": 0}
    assert metrics["validation"]["questions"] == 12
    assert metrics["validation"]["f1"] > metrics["validation_before"]["f1"]

    records = [json.loads(line) for line in (run.path / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 12
    contexts = read_squad(data).set_index("id")["context"]
    for r in records:
        assert {"id", "question", "gold", "prediction", "start", "end", "score", "exact_match", "f1"} <= set(r)
        assert contexts[r["id"]][r["start"]:r["end"]] == r["prediction"]

    context = "good film 123 bad food"
    [answer] = run.predict([{"question": "the number?", "context": context}])
    assert set(answer) == {"row", "question", "answer", "start", "end", "score"}
    assert context[answer["start"]:answer["end"]] == answer["answer"]
    assert Predictor(run.path).task.state()["doc_stride"] == 8

    scored = evaluate(run.path, DataConfig(train=str(data), max_length=48, doc_stride=8))
    assert scored["questions"] == 60
