"""A stand-in hidden-states server for supervisor tests: GET /health and /metrics on 127.0.0.1."""

import argparse
import http.server
import os
import signal
import subprocess
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--fail", action="store_true", help="print an error and exit 3 at once")
p.add_argument("--never-healthy", action="store_true", help="answer /health with 503 forever")
p.add_argument("--metrics", default=None, help="file whose text /metrics serves")
p.add_argument("--spawn-child", default=None, help="start a grandchild `sleep` and write its pid here")
p.add_argument("--ignore-term", action="store_true", help="ignore SIGTERM (the supervisor must SIGKILL)")
p.add_argument("--start-delay", type=float, default=0.0)
p.add_argument("--unhealthy-file", default=None, help="answer /health with 503 while this file exists")
a = p.parse_args()

print(f"fake server pid {os.getpid()} starting", flush=True)
if a.fail:
    print("ValueError: boom: cannot load the model weights", flush=True)
    sys.exit(3)
if a.ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if a.spawn_child:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(a.spawn_child, "w") as fh:
        fh.write(str(child.pid))
time.sleep(a.start_delay)


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            sick = a.never_healthy or (a.unhealthy_file and os.path.exists(a.unhealthy_file))
            code, body = (503, b"unhealthy") if sick else (200, b"ok")
        elif self.path == "/metrics":
            code = 200
            body = open(a.metrics, "rb").read() if a.metrics else b"vllm:num_requests_running 0\nvllm:num_requests_waiting 0\n"
        else:
            code, body = 404, b"no"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), H)
print("listening", flush=True)
srv.serve_forever()
