"""Prompting helpers and a ReAct agent over any OpenAI-compatible chat endpoint (genlab serve or another).

    from genlab.agent import ChatClient, Agent, default_tools
    client = ChatClient("http://127.0.0.1:8000/v1", model="tiny")
    result = Agent(client, default_tools(client)).run("What is 12 * 7?")
    result.answer, result.steps

prompts.py: templates and few-shot builders. react.py: the tolerant parser and the loop.
tools.py: a calculator that never evaluates code, BM25 search over local text, genlab models
as tools. client.py: the HTTP client (standard library only).
"""
from .client import APIError, ChatClient
from .prompts import FewShot, PromptTemplate
from .react import Agent, AgentResult, ParseError, ReActStep, parse_react
from .tools import BM25, Tool, calculator, default_tools, draw_image_tool, sample_text_tool, search_tool

__all__ = ["APIError", "ChatClient", "FewShot", "PromptTemplate", "Agent", "AgentResult", "ParseError", "ReActStep",
           "parse_react", "BM25", "Tool", "calculator", "default_tools", "draw_image_tool", "sample_text_tool",
           "search_tool"]
