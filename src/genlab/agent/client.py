"""A minimal client for OpenAI-compatible endpoints (chat, completions, images), standard library only."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from ..errors import GenlabError


class APIError(GenlabError):
    """The endpoint answered with an error or could not be reached."""


class ChatClient:
    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.base_url + path, data=json.dumps(body).encode(), headers=headers,
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = e.reason
            raise APIError(f"{self.base_url}{path} answered {e.code}: {message}") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise APIError(f"cannot reach {self.base_url}{path}: {getattr(e, 'reason', e)}") from None

    def chat(self, messages: list[dict[str, str]], stop: list[str] | None = None, max_tokens: int | None = None,
             temperature: float = 0.0, model: str | None = None) -> str:
        body: dict[str, Any] = {"model": model or self.model, "messages": messages, "temperature": temperature}
        if stop:
            body["stop"] = stop
        if max_tokens:
            body["max_tokens"] = max_tokens
        out = self.post("/chat/completions", body)
        try:
            return out["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise APIError(f"unexpected chat answer from {self.base_url}: {str(out)[:200]}") from None

    def complete(self, prompt: str, model: str | None = None, **options: Any) -> str:
        out = self.post("/completions", {"model": model or self.model, "prompt": prompt, **options})
        return out["choices"][0]["text"]

    def image(self, prompt: str, model: str, n: int = 1, **options: Any) -> list[str]:
        """Base64 PNGs."""
        out = self.post("/images/generations", {"model": model, "prompt": prompt, "n": n,
                                                "response_format": "b64_json", **options})
        return [d["b64_json"] for d in out["data"]]
