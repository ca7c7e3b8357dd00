#!/usr/bin/python3
"""The test HTTP server of the image tests (Tests/VMToolsTests/TestImageServer.swift).

Serves DIRECTORY on 127.0.0.1 at a port the kernel picks, written to
STATE/port once it listens. Every request is logged to STATE/requests, one
line: METHOD PATH RANGE STATUS BODY-BYTES (RANGE is '-' without one), written
before the body is sent. Faults,
for the error paths of a download:
  --drop-once PATH      the first GET of PATH sends half the body, then closes
  --redirect-loop PATH  PATH redirects to itself, forever
  --status PATH=CODE    PATH answers CODE with an empty body
  --throttle N          bodies are sent at about N bytes a second
  --tls CERT KEY        HTTPS with this certificate and key (PEM)
It exits when its parent does, so a test that dies leaves no server behind.
"""
import argparse
import http.server
import os
import re
import sys
import threading
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("directory")
    ap.add_argument("state")
    ap.add_argument("--drop-once", action="append", default=[])
    ap.add_argument("--redirect-loop", action="append", default=[])
    ap.add_argument("--status", action="append", default=[])
    ap.add_argument("--throttle", type=int, default=0)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = ap.parse_args()
    root = os.path.realpath(args.directory)
    statuses = {}
    for s in args.status:
        p, _, c = s.rpartition("=")
        statuses[p] = int(c)
    dropped = set()
    lock = threading.Lock()
    log = open(os.path.join(args.state, "requests"), "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def record(self, status, sent):
            with lock:
                log.write("%s %s %s %d %d\n" % (self.command, self.path, self.headers.get("Range", "-").replace(" ", ""), status, sent))

        def empty(self, status, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.record(status, 0)

        def do_HEAD(self):
            self.serve(False)

        def do_GET(self):
            self.serve(True)

        def serve(self, body):
            path = urllib.parse.urlsplit(self.path).path
            if path in statuses:
                return self.empty(statuses[path])
            if path in args.redirect_loop:
                return self.empty(302, [("Location", path)])
            local = os.path.realpath(os.path.join(root, urllib.parse.unquote(path).lstrip("/")))
            if not local.startswith(root + "/") or not os.path.isfile(local):
                return self.empty(404)
            size = os.path.getsize(local)
            start, end, status = 0, size, 200
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "").replace(" ", ""))
            if m:
                start = int(m.group(1))
                if m.group(2):
                    end = min(size, int(m.group(2)) + 1)
                if start >= size:
                    return self.empty(416, [("Content-Range", "bytes */%d" % size)])
                status = 206
            self.send_response(status)
            self.send_header("Content-Length", str(end - start))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end - 1, size))
            self.end_headers()
            if not body:
                return self.record(status, 0)
            drop = False
            if path in args.drop_once:
                with lock:
                    drop = path not in dropped
                    dropped.add(path)
            count = end - start
            if drop:
                count = max(1, count // 2)
            # Logged before the body goes out, so a client that has read it
            # all always finds its request in the log.
            self.record(status, count)
            with open(local, "rb") as f:
                try:
                    if args.throttle > 0:
                        f.seek(start)
                        sent = 0
                        while sent < count:
                            chunk = f.read(min(65536, count - sent, max(1, args.throttle // 20)))
                            if not chunk:
                                break
                            time.sleep(len(chunk) / args.throttle)
                            self.wfile.write(chunk)
                            sent += len(chunk)
                    elif args.tls:
                        f.seek(start)
                        left = count
                        while left > 0:
                            chunk = f.read(min(1 << 20, left))
                            if not chunk:
                                break
                            self.wfile.write(chunk)
                            left -= len(chunk)
                    else:
                        self.wfile.flush()
                        self.connection.sendfile(f, start, count)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            if drop:
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(2)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if args.tls:
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    parent = os.getppid()

    def watch_parent():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    tmp = os.path.join(args.state, ".port.tmp")
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, os.path.join(args.state, "port"))
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
