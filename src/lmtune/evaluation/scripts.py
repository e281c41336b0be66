"""Character ranges of scripts written without spaces between words, which metrics and baselines read one
character at a time (a whole Chinese clause is otherwise a single "word")."""

# CJK ideographs (with extension A and compatibility forms) and Japanese kana.
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
