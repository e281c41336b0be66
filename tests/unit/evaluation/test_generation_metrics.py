from __future__ import annotations

import pytest
from rouge_score import rouge_scorer

from lmtune.evaluation.generation import ScriptAwareTokenizer, generation_metrics, repeats_itself, row_scores

ALL = ["rouge", "bleu", "exact"]
# At least four tokens: corpus BLEU of a shorter text is 0 even against itself (it has no 4-grams).
SENTENCE = "the quick brown fox jumps over the lazy dog"


def test_identical_texts_score_100_everywhere():
    scores = generation_metrics([SENTENCE, "A second sentence, with punctuation."],
                                [SENTENCE, "A second sentence, with punctuation."], ALL)
    assert scores == {"rows": 2, "repeat_loops": 0.0, "rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0,
                      "bleu": 100.0, "chrf": 100.0, "exact_match": 100.0}


def test_partial_overlap_matches_hand_computed_rouge():
    # Tokens (lowercased, punctuation dropped):
    #   prediction: a cat sat on the mat today   (7 unigrams, 6 bigrams)
    #   reference:  the cat sat on the mat       (6 unigrams, 5 bigrams)
    # ROUGE-1: shared unigrams cat, sat, on, the (once: the prediction has one), mat = 5.
    #   P = 5/7, R = 5/6, F = 2PR / (P + R) = (50/42) / (65/42) = 10/13 = 0.76923 -> 76.92
    # ROUGE-2: shared bigrams cat sat, sat on, on the, the mat = 4.
    #   P = 4/6, R = 4/5, F = (16/15) / (22/15) = 8/11 = 0.72727 -> 72.73
    # ROUGE-L: the longest common subsequence is "cat sat on the mat" = 5 tokens, so it equals ROUGE-1 here.
    scores = row_scores("A cat sat on the mat, today!", "The cat sat on the mat.", ["rouge"])
    assert scores == {"rouge1": 76.92, "rouge2": 72.73, "rougeL": 76.92}


def test_corpus_rouge_is_the_mean_of_row_scores():
    scores = generation_metrics([SENTENCE, "a cat sat on the mat today"], [SENTENCE, "the cat sat on the mat"],
                                ["rouge"])
    assert scores["rouge1"] == round((100 + 100 * 10 / 13) / 2, 2) == 88.46


def test_chinese_partial_overlap_scores_between_0_and_100():
    prediction, reference = "今天天气很好", "今天天气不错"
    # rouge_score's default tokenizer deletes every non-[a-z0-9] character, so it sees two empty texts.
    default = rouge_scorer.RougeScorer(["rouge1"]).score(reference, prediction)["rouge1"].fmeasure
    assert default == 0.0
    # Per character: 今 天 天 气 shared out of 6 on each side -> P = R = F = 4/6.
    assert row_scores(prediction, reference, ["rouge"])["rouge1"] == 66.67
    # Whole-word BLEU ("13a") would see one unmatched token per side and score 0; the "zh" tokenizer splits Han.
    bleu = generation_metrics([prediction], [reference], ["bleu"])["bleu"]
    assert 0 < bleu < 100


def test_japanese_and_korean_partial_overlap_scores_between_0_and_100():
    pairs = [("今日はいい天気です", "今日はとても良い天気です"), ("오늘 날씨가 좋아요", "오늘 날씨가 나빠요")]
    for prediction, reference in pairs:
        scores = row_scores(prediction, reference, ["rouge", "bleu"])
        for key in ("rouge1", "bleu"):
            assert 0 < scores[key] < 100, (prediction, key, scores)


def test_tokenizer_splits_scripts_without_spaces_per_character_and_keeps_latin_words_whole():
    assert ScriptAwareTokenizer().tokenize("Hello 世界, GPT-4 は2024年・안녕") == [
        "hello", "世", "界", "gpt", "4", "は", "2024", "年", "안", "녕"]


def test_exact_match_ignores_case_whitespace_and_trailing_punctuation():
    assert row_scores("  The answer  is\nPositive. ", "the answer is positive", ["exact"]) == {"exact_match": 100.0}
    assert row_scores("是。", "是", ["exact"]) == {"exact_match": 100.0}
    assert row_scores("positive", "negative", ["exact"]) == {"exact_match": 0.0}
    scores = generation_metrics(["Positive!", "positive", "neutral"], ["positive", "negative", "neutral"], ["exact"])
    assert scores == {"rows": 3, "repeat_loops": 0.0, "exact_match": 66.67}


def test_empty_prediction_scores_zero():
    expected = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0, "bleu": 0.0, "chrf": 0.0, "exact_match": 0.0}
    assert row_scores("", SENTENCE, ALL) == expected
    assert generation_metrics([""], [SENTENCE], ALL) == {"rows": 1, "repeat_loops": 0.0, **expected}


def test_empty_lists_return_only_the_row_count():
    assert generation_metrics([], [], ALL) == {"rows": 0}


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        generation_metrics(["a", "b"], ["a"], ["exact"])


def test_unknown_kind_raises_and_lists_valid_kinds():
    with pytest.raises(ValueError, match=r"\['meteor'\]; valid kinds are \['rouge', 'bleu', 'exact'\]"):
        generation_metrics(["a"], ["a"], ["rouge", "meteor"])
    with pytest.raises(ValueError, match="valid kinds"):
        row_scores("a", "a", ["meteor"])


def test_a_loop_is_a_unit_said_three_times_in_a_row_not_a_recurring_word():
    assert repeats_itself("美丽的美丽的美丽的美丽的")  # characters: period 3, 12 in a row
    assert repeats_itself("I am Bob. I am Bob. I am Bob. I am Bob.")
    assert repeats_itself("I like it. " + "It is a very good day for a walk. " * 3)
    assert not repeats_itself("人工智能很重要。人工智能在发展，人工智能是未来。")  # recurs, never in a row
    assert not repeats_itself("哈哈哈，太好笑了")  # too short to be a loop
    assert not repeats_itself("The cat sat on the mat and the dog sat on the rug.")
    loops = generation_metrics(["美丽的" * 5, "一个好答案。", "ok", "yes " * 20], ["a", "b", "c", "d"], ["exact"])
    assert loops["repeat_loops"] == 50.0
