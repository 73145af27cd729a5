"""A tiny OpenAI-compatible embeddings server on 127.0.0.1 for offline tests.

``POST /v1/embeddings`` answers with deterministic vectors (a hash of each input text), usage
tokens = words + 1 per text. For LLMSeqPrompt's OpenAI backend it also serves ``POST /v1/files``
(multipart upload; the file's bytes are kept in ``files``), ``POST /v1/fine_tuning/jobs``, ``GET
/v1/fine_tuning/jobs/<id>`` (``queued``, then ``running`` for ``job_polls_running`` polls, then
``succeeded`` with ``fine_tuned_model`` "ft:<model>:stub") and ``POST /v1/chat/completions``
(``n`` choices cycling through ``chat_answers``; the last user line when that list is empty). ``fail_plan`` is a list of HTTP status codes returned (with
``Retry-After: 0``) by the next requests before answering normally; every request body is kept
in ``requests``.
"""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def stub_vector(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


class OpenAIStub:
    def __init__(self, dim: int = 8):
        self.dim = dim
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.fail_plan: list[int] = []
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, dict] = {}
        self.job_polls_running = 2
        self.chat_answers: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                path = self.path.rstrip("/")
                stub.requests.append({"GET": path})
                if path.startswith("/v1/fine_tuning/jobs/") and path.rsplit("/", 1)[1] in stub.jobs:
                    job = stub.jobs[path.rsplit("/", 1)[1]]
                    job["polls"] += 1
                    job["status"] = "running" if job["polls"] <= stub.job_polls_running else "succeeded"
                    if job["status"] == "succeeded":
                        job["fine_tuned_model"] = f"ft:{job['model']}:stub"
                    return self._send(200, {k: v for k, v in job.items() if k != "polls"})
                return self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                path = self.path.rstrip("/")
                if path == "/v1/files":  # multipart: keep the bytes, answer a file object
                    fid = f"file-{len(stub.files)}"
                    stub.files[fid] = raw
                    stub.requests.append({"POST": path, "bytes": len(raw)})
                    return self._send(200, {"id": fid, "object": "file", "bytes": len(raw), "created_at": 0,
                                            "filename": "train.jsonl", "purpose": "fine-tune", "status": "processed"})
                body = json.loads(raw)
                stub.requests.append(body)
                stub.headers.append(dict(self.headers))
                if path == "/v1/fine_tuning/jobs":
                    jid = f"ftjob-{len(stub.jobs)}"
                    stub.jobs[jid] = {"id": jid, "object": "fine_tuning.job", "model": body["model"], "status": "queued",
                                      "training_file": body["training_file"],
                                      "validation_file": body.get("validation_file"), "created_at": 0,
                                      "fine_tuned_model": None, "polls": 0, "hyperparameters": {"n_epochs": 1},
                                      "organization_id": "org", "result_files": [], "seed": 0}
                    return self._send(200, {k: v for k, v in stub.jobs[jid].items() if k != "polls"})
                if path == "/v1/chat/completions":
                    n = int(body.get("n") or 1)
                    last = body["messages"][-1]["content"].splitlines()[-1]
                    pool = stub.chat_answers or [last]
                    choices = [{"index": i, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": pool[i % len(pool)]}} for i in range(n)]
                    return self._send(200, {"id": "chatcmpl-stub", "object": "chat.completion", "created": 0,
                                            "model": body["model"], "choices": choices,
                                            "usage": {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": 1 + n}})
                if path != "/v1/embeddings":
                    return self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                if stub.fail_plan:
                    code = stub.fail_plan.pop(0)
                    return self._send(code, {"error": {"message": f"stub {code}", "type": "stub"}},
                                      {"Retry-After": "0"})
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                dim = body.get("dimensions") or stub.dim
                data = [{"object": "embedding", "index": i, "embedding": stub_vector(t, dim).tolist()}
                        for i, t in enumerate(inputs)]
                data = data[::-1]  # out of order on purpose: clients must sort by index
                tokens = sum(len(t.split()) + 1 for t in inputs)
                self._send(200, {"object": "list", "data": data, "model": body["model"],
                                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

            def _send(self, code, obj, headers=None):
                blob = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(blob)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
