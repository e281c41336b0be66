"""Extractive question answering data: SQuAD v1.1 JSON, or tables with context, question and answers columns.

Every reader returns one table of questions: columns id, title, context, question, answers (a list of
{"text", "answer_start"}), index = the 1-based question number in the file, attrs["file"] = the path.
Contexts are kept exactly as written: answer_start counts characters in them, so cleaning them (as
`clean_text` does for classification) would move every answer.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
from sklearn.model_selection import GroupShuffleSplit

from lmtune.data.clean import clean_string, is_missing
from lmtune.data.readers import file_label, read_table
from lmtune.errors import DataError

COLUMNS = ["id", "title", "context", "question", "answers"]


def read_squad(path: str | Path, fmt: str = "auto", *, labelled: bool = True) -> pd.DataFrame:
    """Read and check one file; `labelled=False` allows questions without answers (for prediction)."""
    path = Path(path)
    articles = _squad_articles(path) if fmt in ("auto", "json") and path.suffix.lower() == ".json" else None
    if articles is not None:
        records = [{"id": qa.get("id"), "title": article.get("title"), "context": paragraph.get("context"),
                    "question": qa.get("question"), "answers": qa.get("answers")}
                   for article in articles for paragraph in article.get("paragraphs", [])
                   for qa in paragraph.get("qas", [])]
        df = pd.DataFrame(records, index=pd.RangeIndex(1, len(records) + 1), columns=COLUMNS, dtype=object)
    else:
        table = read_table(path, fmt, expected=["context", "question", "answers"])
        needed = ["context", "question", "answers"] if labelled else ["context", "question"]
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise DataError(f"column {missing[0]!r} not found; question answering reads the columns context, "
                            f"question, answers (and optional id, title); this file has: "
                            f"{', '.join(map(str, table.columns))}", file=str(path), column=missing[0])
        df = pd.DataFrame({c: table.get(c) for c in COLUMNS}, index=table.index, dtype=object)
    df.attrs["file"] = str(path)
    return check_questions(df, labelled)


def _squad_articles(path: Path) -> list | None:
    """The articles of a SQuAD-shaped file ({"data": [{"title", "paragraphs"}]}), or None for other JSON."""
    if not path.exists():
        return None  # read_table reports the missing file
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None  # read_table explains what is wrong with the file
    articles = data.get("data") if isinstance(data, dict) else None
    if isinstance(articles, list) and articles and isinstance(articles[0], dict) and "paragraphs" in articles[0]:
        return articles
    return None


def check_questions(df: pd.DataFrame, labelled: bool) -> pd.DataFrame:
    """Ids filled in (the question number where absent), questions cleaned, answers parsed and checked.

    A labelled question with no question text is left out with a warning: published sets have a few (CMRC 2018's
    trial set, 2 of 1,002), and nothing can be learnt from them. In inputs to predict it stays an error, since
    every input must get its answer."""
    file = file_label(df)
    ids, questions, answers, kept = [], [], [], []
    for row, record in df.iterrows():
        qid = str(row) if is_missing(record["id"]) else str(record["id"])
        if labelled and _blank(record["question"]):
            warnings.warn(f"{file}, row {row}: question id {qid!r} has no question text; left out", stacklevel=2)
            continue
        for column in ("question", "context"):
            if _blank(record[column]):
                raise DataError(f"question id {qid!r} has no {column}", file=file, row=row, column=column)
        kept.append(row)
        context = str(record["context"])
        spans = _answers(record["answers"], file, row, qid)
        if labelled and not spans:
            raise DataError(f"question id {qid!r} has no answer; extractive QA training and evaluation need one",
                            file=file, row=row, column="answers")
        for span in spans:
            start, text = span["answer_start"], span["text"]
            found = context[start:start + len(text)]
            if found != text:
                raise DataError(f"question id {qid!r}: answer_start {start} does not point at the answer: expected "
                                f"{text!r}, found {found!r}", file=file, row=row, column="answers")
        ids.append(qid)
        questions.append(clean_string(str(record["question"])))  # no offsets point into questions
        answers.append(spans)
    out = df.loc[kept].assign(id=ids, question=questions, answers=pd.Series(answers, index=kept, dtype=object))
    out.attrs = dict(df.attrs)
    return out


def _blank(value: object) -> bool:
    return is_missing(value) or not str(value).strip()


def _answers(value: object, file: str | None, row: int, qid: str) -> list[dict]:
    """[{"text", "answer_start"}] from a list of those, or from datasets' {"text": [...], "answer_start": [...]}."""
    if isinstance(value, str):  # CSV cells hold the JSON text
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"question id {qid!r}: answers is not JSON", file=file, row=row, column="answers") \
                from None
    if value is None or (not isinstance(value, dict | list | tuple) and is_missing(value)):
        return []
    if isinstance(value, dict):
        texts, starts = value.get("text"), value.get("answer_start")
        if isinstance(texts, str):
            texts, starts = [texts], [starts]
        texts, starts = [] if texts is None else list(texts), [] if starts is None else list(starts)
        if len(texts) != len(starts):
            raise DataError(f"question id {qid!r}: {len(texts)} answer texts but {len(starts)} answer_start values",
                            file=file, row=row, column="answers")
        value = [{"text": t, "answer_start": s} for t, s in zip(texts, starts, strict=True)]
    spans = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or item.get("answer_start") is None:
            raise DataError(f'question id {qid!r}: each answer needs "text" and "answer_start", got {item!r}',
                            file=file, row=row, column="answers")
        spans.append({"text": item["text"], "answer_start": int(item["answer_start"])})
    return spans


def article_of(df: pd.DataFrame) -> list:
    """Each question's article: its title, or its paragraph where the file has no titles."""
    return [("title", t) if not is_missing(t) else ("context", c) for t, c in zip(df["title"], df["context"],
                                                                                    strict=True)]


def split_by_article(df: pd.DataFrame, validation_size: float, test_size: float,
                     seed: int) -> dict[str, pd.DataFrame]:
    """Seeded train/validation/test split that keeps every article whole.

    Questions about one article share its paragraphs, and often its answers; split by question, the
    evaluation would score the model on text it was trained to read and overstate how well it generalises.
    Sizes are fractions of the articles.
    """
    groups = article_of(df)
    n = len(set(groups))
    counts = {name: max(1, round(size * n)) if size > 0 else 0
              for name, size in (("test", test_size), ("validation", validation_size))}
    if n - sum(counts.values()) < 1:
        raise DataError(f"only {n} articles: too few to hold out whole articles for validation/test; give a "
                        "validation file or lower data.validation_size / data.test_size", file=file_label(df))
    splits, rest = {}, df
    for name, count in counts.items():
        if count:
            number: dict = {}
            codes = [number.setdefault(key, len(number)) for key in article_of(rest)]
            kept, held = next(GroupShuffleSplit(n_splits=1, test_size=count, random_state=seed)
                              .split(rest, groups=codes))
            splits[name], rest = rest.iloc[held].sort_index(), rest.iloc[kept].sort_index()
    return {"train": rest, **{k: splits[k] for k in ("validation", "test") if k in splits}}
