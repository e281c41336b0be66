"""The from-scratch BiLSTM baseline: it learns a separable task, repeats itself for a seed, reads pairs and
multi-label targets, and its probabilities fit the baseline scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmtune.evaluation.lstm_baseline import BiLSTMClassifier, Vocabulary, tokenize

WORDS = {1: ["good", "great", "lovely"], 0: ["bad", "awful", "dull"]}
FILLER = ["the", "film", "food", "was", "really", "quite", "service", "plot"]


def sentiment_rows(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Filler words around one sentiment word at a random place: only that word decides the label."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    texts = []
    for label in y:
        words = list(rng.choice(FILLER, size=rng.integers(2, 7)))
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(WORDS[int(label)])))
        texts.append(" ".join(words))
    return texts, y


def small(**kwargs) -> BiLSTMClassifier:
    # Narrow layers and few steps keep the test at a second or two; the task needs no more.
    return BiLSTMClassifier(**{"embedding": 16, "hidden": 16, "min_steps": 60, "batch_size": 16, "lr": 5e-3, **kwargs})


def test_learns_a_separable_task_on_held_out_rows():
    texts, y = sentiment_rows(160, seed=0)
    held_texts, held_y = sentiment_rows(60, seed=1)
    model = small(seed=0).fit(texts[:130], y[:130], validation=(texts[130:], y[130:]))
    probs = model.predict_proba(held_texts)
    assert probs.shape == (60, 2) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert (probs.argmax(axis=1) == held_y).mean() >= 0.9


def test_a_seed_gives_the_same_model_and_leaves_the_global_random_state_alone():
    texts, y = sentiment_rows(80, seed=2)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = small(seed=7).fit(texts, y).predict_proba(texts)
    assert torch.rand(1) == expected_next
    np.testing.assert_array_equal(first, small(seed=7).fit(texts, y).predict_proba(texts))
    assert not np.array_equal(first, small(seed=8).fit(texts, y).predict_proba(texts))


def test_classes_are_those_seen_in_training():
    texts, y = sentiment_rows(40, seed=3)
    model = small(seed=0, min_steps=2).fit(texts, y + 2)  # class indices 2 and 3 of a larger label set
    assert list(model.classes_) == [2, 3]
    assert model.predict_proba(texts[:5]).shape == (5, 2)


def colour_pairs(n: int, seed: int) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Label 1 when both halves name the same colour: a signal in neither half alone."""
    rng = np.random.default_rng(seed)
    colours = rng.choice(["red", "blue"], size=(n, 2))
    return [(f"a {a} thing", f"the {b} one") for a, b in colours], (colours[:, 0] == colours[:, 1]).astype(int)


def test_sentence_pairs_are_read_as_two_halves_with_a_separator():
    pairs, y = colour_pairs(120, seed=4)
    held, held_y = colour_pairs(40, seed=5)
    model = small(seed=0, min_steps=150).fit(pairs, y)
    assert Vocabulary(pairs).index["<sep>"] == 2
    probs = model.predict_proba(held)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert (probs.argmax(axis=1) == held_y).mean() >= 0.9


def test_multi_label_outputs_independent_sigmoid_scores():
    texts, y = sentiment_rows(120, seed=5)
    long = np.array([len(t.split()) > 4 for t in texts], dtype=int)
    targets = np.stack([y, long], axis=1)  # two labels at once: sentiment and length
    model = small(seed=0, multi_label=True).fit(texts, targets)
    probs = model.predict_proba(texts)
    assert probs.shape == (120, 2) and list(model.classes_) == [0, 1]
    assert ((probs >= 0) & (probs <= 1)).all()
    assert ((probs[:, 0] >= 0.5) == y).mean() >= 0.9


@pytest.mark.parametrize(("text", "tokens"), [
    ("Not GOOD, really!", ["not", "good", ",", "really", "!"]),
    ("这部电影很好看", ["这", "部", "电", "影", "很", "好", "看"]),
    ("iPhone外卖ok", ["iphone", "外", "卖", "ok"]),
])
def test_words_are_lowercased_and_chinese_is_read_by_character(text, tokens):
    assert tokenize(text) == tokens


def test_the_vocabulary_keeps_repeated_words_only():
    vocabulary = Vocabulary(["good film", "good food", "rare"])
    assert set(vocabulary.index) == {"<pad>", "<unk>", "<sep>", "good"}
    assert vocabulary.encode("rare good", max_tokens=10) == [1, 3]
    assert vocabulary.encode("", max_tokens=10) == [1]  # an empty text is one unknown token, never zero steps
