"""The ReAct agent against a scripted model: a tiny OpenAI-compatible server that replays a transcript."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from genlab.agent import (BM25, Agent, ChatClient, FewShot, PromptTemplate, Tool, calculator, default_tools,
                          parse_react)
from genlab.agent.client import APIError
from genlab.agent.react import ParseError
from genlab.cli import main
from genlab.errors import ConfigError


class ScriptedModel:
    """Answers /v1/chat/completions with the next scripted reply and records every request."""

    def __init__(self, replies: list[str]):
        self.replies, self.requests = list(replies), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                if not outer.replies:
                    self.send_response(500)
                    payload = {"error": {"message": "script exhausted", "type": "server_error", "param": None,
                                         "code": None}}
                else:
                    self.send_response(200)
                    payload = {"choices": [{"index": 0, "message": {"role": "assistant",
                                                                    "content": outer.replies.pop(0)},
                                            "finish_reason": "stop"}]}
                data = json.dumps(payload).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    servers = []

    def make(replies):
        s = ScriptedModel(replies)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def test_react_loop_with_tools_and_a_malformed_turn(scripted, tmp_path):
    corpus = tmp_path / "notes.txt"
    corpus.write_text("Otters hold hands while sleeping so they do not drift apart.\n\n"
                      "The harbour opens at seven and closes at dusk.\n", encoding="utf-8")
    model = scripted([
        "Thought: I should multiply first.\nAction: calculator\nAction Input: 12 * 7",
        "The product is 84 so I am fairly sure",                      # malformed: no Action, no answer
        "**Thought**: look it up\n**Action**: Search\n**Action Input**: \"otters sleeping\"",
        "Thought: done\nFinal Answer: 84; otters hold hands",
    ])
    client = ChatClient(model.url, model="scripted")
    agent = Agent(client, default_tools(client, corpus=corpus), max_iterations=6)
    result = agent.run("What is 12 times 7, and what do otters do when sleeping?")
    assert result.answer == "84; otters hold hands" and result.stopped == "answer"
    assert [s.action for s in result.steps] == ["calculator", None, "search", None]
    assert result.steps[0].observation == "84"
    assert "Invalid format" in result.steps[1].observation
    assert "Otters hold hands" in result.steps[2].observation
    # what the model saw: tools in the system prompt, observations fed back, stop at Observation
    first, second, third = model.requests[:3]
    assert "calculator:" in first["messages"][0]["content"] and "search:" in first["messages"][0]["content"]
    assert "\nObservation:" in first["stop"] and first["model"] == "scripted"
    assert "Observation: 84" in second["messages"][1]["content"]
    assert "Invalid format" in third["messages"][1]["content"]
    assert "Final Answer: 84; otters hold hands" in result.transcript()


def test_max_iterations_guard_and_unknown_tool(scripted):
    model = scripted(["Action: teleport\nAction Input: moon"] * 3)
    result = Agent(ChatClient(model.url, model="m"), [calculator], max_iterations=3).run("go to the moon")
    assert result.answer is None and result.stopped == "max_iterations" and len(model.requests) == 3
    assert "no tool 'teleport'" in result.steps[0].observation


def test_parser_is_tolerant():
    s = parse_react("  thought : hmm\n ACTION:calculator\naction input:\n  `3 + 4`\nObservation: 7\nFinal Answer: 7")
    assert (s.thought, s.action, s.action_input, s.final_answer) == ("hmm", "calculator", "3 + 4", None)
    assert parse_react("Action: search[red cats]").action_input == "red cats"
    assert parse_react("So...\nFinal answer: **42**\nQuestion: next").final_answer == "42"
    with pytest.raises(ParseError):
        parse_react("I think it is 42.")


def test_calculator_never_runs_code():
    assert calculator("2 ^ 10") == "1024" and calculator("(1 + 2) * 3.5") == "10.5"
    for bad in ["__import__('os').system('true') + 1", "1 if 1 else 2", "[1][0] + 1", "x + 1", "1/0"]:
        assert calculator(bad).startswith("error:"), bad


def test_bm25_ranks_the_matching_passage_first():
    index = BM25(["the cat sat on the mat", "dogs bark at the mailman every morning", "a cat and a dog"])
    assert index.search("mailman")[0][1] == "dogs bark at the mailman every morning"
    assert index.search("cat")[0][1] in ("the cat sat on the mat", "a cat and a dog")
    assert index.search("zebra") == []


def test_prompt_templates_and_few_shot():
    t = PromptTemplate("Q: {question}\nA: {answer}")
    assert t.fields == ["question", "answer"]
    with pytest.raises(ConfigError, match="missing"):
        t.format(question="x")
    fs = FewShot(t, [{"question": "2+2", "answer": "4"}], PromptTemplate("Q: {question}\nA:"), prefix="Do sums.")
    assert fs.format(question="3+3") == "Do sums.\n\nQ: 2+2\nA: 4\n\nQ: 3+3\nA:"


def test_unreachable_endpoint_is_a_clear_error(scripted):
    model = scripted([])
    with pytest.raises(APIError, match="answered 500: script exhausted"):
        ChatClient(model.url, "m").chat([{"role": "user", "content": "hi"}])


def test_cli_agent(scripted, capsys):
    model = scripted(["Action: calculator\nAction Input: 6*7", "Final Answer: 42"])
    assert main(["agent", "What is 6 times 7?", "--base-url", model.url, "--model", "m"]) == 0
    out = capsys.readouterr().out
    assert "Observation: 42" in out and out.strip().endswith("42")
    assert main(["agent", "hi", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]) == 1
    assert capsys.readouterr().err.startswith("genlab: error: cannot reach")
