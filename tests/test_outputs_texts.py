"""outputs.Texts: files named one way, JSON with token counts, a summary that shows the texts and flags empty ones."""
from __future__ import annotations

import json

from genlab.outputs import Texts


def test_texts_files_json_and_summary(tmp_path):
    t = Texts(texts=["Hi there", "Hi" + " " * 300, "Hi\n\n"], prompt="Hi", completion_tokens=[6, 300, 2],
              finish_reasons=["length", "length", "stop"], unknown_prompt_tokens=1)
    assert t.completions == [" there", " " * 300, "\n\n"] and t.empty() == [1, 2]
    paths = t.to_files(tmp_path)
    assert [p.name for p in paths] == ["sample-01.txt", "sample-02.txt", "sample-03.txt"]
    assert paths[0].read_text() == "Hi there\n"
    j = json.loads(json.dumps(t.to_json()))
    assert j["kind"] == "texts" and j["completion_tokens"] == [6, 300, 2] and j["finish_reasons"][2] == "stop"
    s = t.summary()
    assert "--- sample 1 of 3 (6 tokens, length) ---\nHi there" in s
    assert " " * 10 not in s  # trailing whitespace trimmed for the terminal
    assert "sample(s) 2, 3 of 3 continued the prompt with nothing or only whitespace" in s
    assert "1 piece(s) of the prompt are not in the vocabulary" in s
