"""A fake OpenAI-style server that misbehaves on cue, for minikd.machinery.client's tests.

Every POST /v1/completions or /v1/chat/completions takes the next action from `script` (then "ok" for good):

    ok       a well-formed answer: text "<prompt> -> done", finish_reason "length" for prompts in `cut`
             (the server's max_tokens cut them off), "stop" for the others; no log-probs (a foreign server)
    drop     close the connection without a word
    half     send the headers and half of an ok body, then close (a response cut in the middle)
    slow     wait `slow_s` seconds, then answer ok (longer than the client's timeout)
    garbage  a 200 whose body is not JSON
    429      rate limited, with "Retry-After: <retry_after>"
    500      a server error
    400      a client error whose message echoes the Authorization header (the client must redact it)

Chat. An ok chat answer has message.content "<user message> -> done" and, with `reasoning` set to the
field name a reasoning server uses ("reasoning_content" or "reasoning"), a trace "thinking about <user
message>" in that field; `chat = False` makes /v1/chat/completions a 404 (a completions-only server), and
such a request takes no action from the script.

`down = True` answers every request with a 500 until it is set back. GET /v1/models lists "fault-model";
/health is a 404, as on a server that does not have one. The server records each request's time, path,
Authorization header, action and body.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultServer:
    def __init__(self, script=(), cut=(), retry_after="0.3", slow_s=1.0, chat=True, reasoning=None):
        self.script, self.cut, self.retry_after, self.slow_s = list(script), set(cut), retry_after, slow_s
        self.chat, self.reasoning = chat, reasoning
        self.down = False
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def next_action(self, auth, path="/v1/completions", body=None) -> str:
        with self.lock:
            action = "500" if self.down else (self.script.pop(0) if self.script else "ok")
            self.log.append({"t": time.monotonic(), "auth": auth, "action": action, "path": path, "body": body})
            return action

    def answer(self, body: dict) -> dict:
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        choices = [{"index": i, "text": f"{p} -> done", "logprobs": None,
                    "finish_reason": "length" if p in self.cut else "stop"} for i, p in enumerate(prompts)]
        return {"id": "x", "object": "text_completion", "model": "fault-model", "choices": choices}

    def chat_answer(self, body: dict) -> dict:
        prompt = body["messages"][-1]["content"]
        message = {"role": "assistant", "content": f"{prompt} -> done"}
        if self.reasoning:
            message[self.reasoning] = f"thinking about {prompt}"
        choice = {"index": 0, "message": message, "logprobs": None,
                  "finish_reason": "length" if prompt in self.cut else "stop"}
        return {"id": "x", "object": "chat.completion", "model": "fault-model", "choices": [choice]}

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def _handler(fault: FaultServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            """quiet"""

        def _send(self, status, data: bytes, headers=(), cut_at=None):
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data[:cut_at])
            except OSError:
                self.close_connection = True  # the client gave up waiting ("slow")

        def do_GET(self):
            if self.path == "/v1/models":
                self._send(200, json.dumps({"object": "list", "data": [{"id": "fault-model"}]}).encode())
            else:
                self._send(404, b'{"error": {"message": "not here"}}')

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            auth = self.headers.get("Authorization")
            chat = self.path == "/v1/chat/completions"
            if chat and not fault.chat:
                self._send(404, b'{"error": {"message": "no such path"}}')
                return
            action = fault.next_action(auth, self.path, body)
            ok = json.dumps(fault.chat_answer(body) if chat else fault.answer(body)).encode()
            if action == "drop":
                self.close_connection = True
            elif action == "half":
                self._send(200, ok, cut_at=len(ok) // 2)
                self.close_connection = True
            elif action == "garbage":
                self._send(200, b"<html>oops</html>")
            elif action in ("429", "500"):
                headers = [("Retry-After", fault.retry_after)] if action == "429" else []
                self._send(int(action), b'{"error": {"message": "try later"}}', headers)
            elif action == "400":
                message = {"error": {"message": f"bad request; you sent {auth}", "type": "invalid_request_error"}}
                self._send(400, json.dumps(message).encode())
            else:
                if action == "slow":
                    time.sleep(fault.slow_s)
                self._send(200, ok)

    return Handler
