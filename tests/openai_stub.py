"""A tiny OpenAI-compatible embeddings server on 127.0.0.1 for offline tests.

``POST /v1/embeddings`` answers with deterministic vectors (a hash of each input text), usage
tokens = words + 1 per text. ``fail_plan`` is a list of HTTP status codes returned (with
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
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                stub.headers.append(dict(self.headers))
                if self.path.rstrip("/") != "/v1/embeddings":
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
