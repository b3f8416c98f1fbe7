"""genlab models as agent tools, and the agent loop against genlab's own small model."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from genlab.agent import APIError, Agent, ChatClient, calculator, draw_image_tool, sample_text_tool


def test_draw_and_write_tools_call_the_server(server, tmp_path):
    client = ChatClient(server.url + "/v1", model="tiny")
    draw = draw_image_tool(client, "faces", tmp_path, labels=["glasses", "no glasses"])
    said = draw("'glasses'")
    path = tmp_path / "faces-01.png"
    assert said == f"saved the image to {path}" and np.asarray(Image.open(path)).mean() > 150
    assert draw("a hat").startswith("error:") and "draws one of" in draw("a hat")
    write = sample_text_tool(client, "tiny", max_tokens=12)
    assert write("the cat").startswith("the cat") and len(write("the cat")) > len("the cat")


def test_agent_reports_a_model_too_small_for_the_react_prompt(server):
    """The tiny model's 96-token context cannot hold the ReAct instructions: a clear error, no loop."""
    client = ChatClient(server.url + "/v1", model="tiny")
    with pytest.raises(APIError, match="context is 96 tokens"):
        Agent(client, [calculator], max_iterations=2, max_tokens=20).run("What is 2 + 2?")
