"""A latent explorer in the browser: a local web server (the standard library's) around a loaded model.

    GET /                 the page (explorer.html): a selector per categorical code, a slider per
                          continuous code, a button for new noise, the image and the sweep of a code
    GET /api/spec         the model's codes, sizes and ranges, as JSON
    GET /api/image?cat=3,1&cont=0.5,-1&seed=7           one image, PNG
    GET /api/sweep?code=cont1&cat=..&cont=..&seed=..    the images along one code, side by side, PNG

A query names a value for every code (cat: one per categorical code; cont: one per continuous code, in
-2..2; seed: the noise, 0..2^31-1). A bad query gets 400 and a message; requests from several tabs are
served concurrently (the model serialises its own runs).
"""

import errno
import io
import json
import os
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from infogan import InfoGANError

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "explorer.html")
CONT_LIMIT = 2.0
SWEEP_STEPS = 9


class BadRequest(Exception):
    pass


def png(images):
    """[N, C, H, W] in [0, 1] -> PNG bytes of the images side by side (lossless, exact pixels)."""
    from PIL import Image

    strip = np.concatenate(list(np.clip(images, 0.0, 1.0)), axis=2)  # [C, H, N*W]
    pixels = np.rint(strip * 255).astype(np.uint8)
    image = Image.fromarray(pixels[0] if len(pixels) == 1 else pixels.transpose(1, 2, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def parse_codes(model, query):
    """(categorical values, continuous values, seed) from a parsed query; BadRequest says what is wrong."""
    allowed = {"cat", "cont", "seed", "code"}
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise BadRequest(f"unknown parameters {unknown}: use cat, cont, seed (and code for a sweep)")
    cats = _numbers(query, "cat", len(model.spec.cat), int)
    for i, (value, code) in enumerate(zip(cats, model.spec.cat, strict=True)):
        if not 0 <= value < code.dim:
            raise BadRequest(f"cat{i + 1}={value} is out of range: it takes 0 to {code.dim - 1}")
    conts = _numbers(query, "cont", model.spec.cont_dim, float)
    for j, value in enumerate(conts):
        if not -CONT_LIMIT <= value <= CONT_LIMIT:
            raise BadRequest(f"cont{j + 1}={value} is out of range: it takes {-CONT_LIMIT:g} to {CONT_LIMIT:g}")
    seed = _numbers(query, "seed", 1, int)[0] if "seed" in query else 0
    if not 0 <= seed < 2**31:
        raise BadRequest(f"seed={seed} is out of range: 0 to {2**31 - 1}")
    return cats, conts, seed


def _numbers(query, name, count, kind):
    if count == 0:
        if query.get(name, [""])[0] not in ("",):
            raise BadRequest(f"this model has no {name} codes")
        return []
    if name not in query:
        raise BadRequest(f"{name} is missing: give {count} comma-separated value(s)")
    parts = query[name][0].split(",")
    if len(parts) != count:
        raise BadRequest(f"{name} needs {count} value(s), not {len(parts)}")
    try:
        values = [kind(p) for p in parts]
    except ValueError:
        raise BadRequest(f"{name}={query[name][0]!r} is not {count} {kind.__name__} value(s)") from None
    if kind is float and not all(np.isfinite(values)):
        raise BadRequest(f"{name} values must be finite numbers")
    return values


class Handler(BaseHTTPRequestHandler):
    model = None  # set by serve()

    def do_GET(self):  # noqa: N802 (the standard library's name)
        url = urllib.parse.urlsplit(self.path)
        try:
            query = urllib.parse.parse_qs(url.query, keep_blank_values=True, strict_parsing=bool(url.query))
        except ValueError:
            return self._send(400, "text/plain", b"malformed query string")
        try:
            if url.path == "/":
                with open(PAGE, "rb") as f:
                    return self._send(200, "text/html; charset=utf-8", f.read())
            if url.path == "/api/spec":
                return self._send(200, "application/json", json.dumps(describe(self.model)).encode())
            if url.path == "/api/image":
                cats, conts, seed = parse_codes(self.model, query)
                images = self.model.generate(cats or None, conts or None, seed=seed)
                return self._send(200, "image/png", png(images))
            if url.path == "/api/sweep":
                cats, conts, seed = parse_codes(self.model, query)
                code = query.get("code", [""])[0]
                if code not in self.model.codes:
                    raise BadRequest(f"unknown code {code!r}: this model has {', '.join(self.model.codes)}")
                images = self.model.sweep(code, SWEEP_STEPS, CONT_LIMIT, cats or None, conts or None, seed=seed)
                return self._send(200, "image/png", png(images))
            return self._send(404, "text/plain", f"no such page: {url.path}".encode())
        except (BadRequest, InfoGANError) as e:
            return self._send(400, "text/plain", str(e).encode())

    def _send(self, status, kind, body):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 (the standard library's signature)
        pass  # one line per image request would drown the terminal


def describe(model):
    return {
        "categorical": [code.dim for code in model.spec.cat],
        "continuous": model.spec.cont_dim,
        "noise": model.spec.noise.dim,
        "image": list(model.image_shape),
        "range": [-CONT_LIMIT, CONT_LIMIT],
        "sweep_steps": SWEEP_STEPS,
        "source": model.path,
    }


def serve(model, host="127.0.0.1", port=8000):
    """A server for the model (port 0: any free port), not yet serving: call serve_forever() on it. `host`: an
    IPv4 or IPv6 address of this machine, or a name of one."""
    handler = type("ModelHandler", (Handler,), {"model": model})
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_type = type("Server", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
    try:
        return server_type((host, port), handler)
    except OSError as e:
        if e.errno in (errno.EADDRINUSE, errno.EACCES):  # taken, or below 1024 without root
            fix = "choose another --port (0 picks a free one)"
        else:
            fix = "give --host an address of this machine (127.0.0.1, or 0.0.0.0 for all its networks)"
        raise InfoGANError(f"cannot listen on {host}:{port}: {e.strerror}; {fix}") from None


def url(server):
    host, port = server.server_address[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve_in_background(model, host="127.0.0.1", port=0):
    """The server, serving from a thread (for tests and notebooks); stop it with server.shutdown()."""
    server = serve(model, host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
