"""The probe app of tests/differential.rs.

It answers every request with JSON describing how *this* app server read
it: the method, the path it routes on, the path a Java server would route on
(`;` parameters stripped from every segment, dot segments resolved) and
every header in the CGI form (`HTTP_X_AUTH_SUBJECT`) that WSGI, PHP and Rack
apps read. The same code runs as WSGI (gunicorn, wsgiref) and as ASGI
(hypercorn, which also speaks h2c).
"""

import json


def java_path(path):
    out = []
    for segment in path.split("/")[1:]:
        segment = segment.split(";", 1)[0]
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    return "/" + "/".join(out)


def describe(method, path, env, version):
    return json.dumps(
        {
            "method": method,
            "path": path,
            "java_path": java_path(path),
            "env": env,
            "version": version,
        }
    ).encode()


def application(environ, start_response):
    """WSGI: the server has already mapped header names to HTTP_*."""
    env = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    body = describe(
        environ["REQUEST_METHOD"],
        environ.get("PATH_INFO", ""),
        env,
        environ.get("SERVER_PROTOCOL", ""),
    )
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


async def app(scope, receive, send):
    """ASGI: headers mapped to HTTP_* the way WSGI bridges (asgiref, a2wsgi) do."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    env = {}
    for name, value in scope["headers"]:
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        value = value.decode("latin-1")
        env[key] = env[key] + "," + value if key in env else value
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = describe(scope["method"], scope["path"], env, scope.get("http_version", ""))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    # The stdlib server: `python3 probe_app.py PORT`.
    import sys
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    make_server("127.0.0.1", int(sys.argv[1]), application, handler_class=Quiet).serve_forever()
