"""`genlab serve` as a user runs it: a real process, a request, Ctrl-C, and bad input."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx



def test_serve_process_answers_and_shuts_down_gracefully(text_run_dir, free_port, subprocess_env):
    ENV = subprocess_env
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "genlab", "serve", f"mini={text_run_dir}", "--port", str(port),
                             "--max-batch", "4"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
            time.sleep(0.1)
        r = httpx.post(url + "/v1/completions", json={"model": "mini", "prompt": "the", "max_tokens": 5}, timeout=30)
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 5
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"serving mini on http://127.0.0.1:{port}/" in out


def test_serve_bad_input_is_one_line(tmp_path, subprocess_env, capsys):
    from genlab.cli import main

    r = subprocess.run([sys.executable, "-m", "genlab", "serve", str(tmp_path / "missing")], env=subprocess_env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("genlab: error:") and "Traceback" not in r.stderr
    for args in (["--port", "0"], ["--max-batch", "0"], ["--timeout", "-1"]):
        assert main(["serve", str(tmp_path), *args]) == 1
        assert capsys.readouterr().err.startswith("genlab: error: --")
    assert main(["serve", f"a={tmp_path}", f"a={tmp_path}"]) == 1
    assert "both be model 'a'" in capsys.readouterr().err
