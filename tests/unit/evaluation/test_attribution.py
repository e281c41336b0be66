"""Token attributions (lmtune.evaluation.attribution) on the tiny random BERT classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from lmtune.evaluation.attribution import deletion_drops, integrated_gradients, occlusion


def probability_of(target: int):
    def score(model, inputs):
        return model(**inputs).logits.float().softmax(-1)[:, target]
    return score


def logit_of(target: int):
    return lambda model, inputs: model(**inputs).logits.float()[:, target]


@pytest.fixture(scope="module")
def classifier(tiny_bert):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3).eval()
    with torch.no_grad():  # seeded (the session's tiny BERT is not), and wide enough that the tokens move the scores
        seeded = torch.Generator().manual_seed(0)
        for parameter in model.parameters():
            parameter.normal_(0, 0.5, generator=seeded)
    return model, AutoTokenizer.from_pretrained(tiny_bert)


def encoded(tokenizer, text: str):
    enc = tokenizer(text, return_tensors="pt", return_special_tokens_mask=True)
    special = enc.pop("special_tokens_mask").bool()
    return dict(enc), special


def test_integrated_gradients_add_up_to_the_score_change(classifier):
    """Completeness: the attributions sum to score(input) - score(baseline), up to the path's numeric error."""
    model, tokenizer = classifier
    inputs, special = encoded(tokenizer, "the film was not good but the food was great")
    score = logit_of(1)
    values, delta = integrated_gradients(model, inputs, score, special, tokenizer.pad_token_id, steps=64)
    baseline = torch.where(special, inputs["input_ids"], torch.full_like(inputs["input_ids"], tokenizer.pad_token_id))
    with torch.no_grad():
        change = float(score(model, inputs)[0] - score(model, {**inputs, "input_ids": baseline})[0])
    assert abs(change) > 1e-3  # a test of nothing otherwise
    assert values.sum() == pytest.approx(change, abs=max(1e-3, 0.02 * abs(change)))
    assert delta == pytest.approx(values.sum() - change, abs=1e-4)
    assert values[special[0].numpy()].tolist() == [0.0, 0.0]  # [CLS] and [SEP] are kept in the baseline


def test_occlusion_is_the_score_drop_of_padding_out_each_token(classifier):
    model, tokenizer = classifier
    inputs, special = encoded(tokenizer, "good film")
    score = probability_of(0)
    drops = occlusion(model, inputs, score, special, tokenizer.pad_token_id)
    ids = inputs["input_ids"].clone()
    ids[0, 2] = tokenizer.pad_token_id
    with torch.no_grad():
        expected = float(score(model, inputs)[0] - score(model, {**inputs, "input_ids": ids})[0])
    assert drops[2] == pytest.approx(expected, abs=1e-5)
    assert drops[0] == 0.0 and drops[-1] == 0.0


def test_deleting_the_top_tokens_is_measured_against_random_deletions(classifier):
    model, tokenizer = classifier
    inputs, special = encoded(tokenizer, "the film was not good but the food was great")
    score = probability_of(2)
    values, _ = integrated_gradients(model, inputs, score, special, tokenizer.pad_token_id)
    top, random = deletion_drops(model, inputs, score, values, special, k=3, rng=np.random.default_rng(0))
    # Recompute the top deletion by hand: the three largest attributions among the non-special tokens.
    order = [i for i in np.argsort(-values, kind="stable") if not special[0, i]][:3]
    keep = [i for i in range(inputs["input_ids"].shape[1]) if i not in order]
    with torch.no_grad():
        full = float(score(model, inputs)[0])
        cut = float(score(model, {k: v[:, keep] for k, v in inputs.items()})[0])
    assert top == pytest.approx(full - cut, abs=1e-6)
    assert isinstance(random, float) and random != top


def test_deletion_keeps_a_token_where_the_model_has_no_special_ones(classifier):
    model, tokenizer = classifier
    inputs, _ = encoded(tokenizer, "good film")
    none_special = torch.zeros_like(inputs["input_ids"], dtype=torch.bool)  # a decoder's tokenizer adds none
    values = np.arange(inputs["input_ids"].shape[1], dtype=float)
    rng = np.random.default_rng(0)
    assert deletion_drops(model, inputs, probability_of(0), values, none_special, k=10, rng=rng) is not None
    one = {k: v[:, :1] for k, v in inputs.items()}
    assert deletion_drops(model, one, probability_of(0), values[:1], none_special[:, :1], k=3, rng=rng) is None
