"""Cross-checks of the decision-mode examples (deploy/ingress/,
deploy/kubernetes/decision/) that no schema can see: every ingress asks the
front door and port tokengate serves, sends the secret where tokengate reads
it, and copies every identity header tokengate's config names (a header it
does not copy would let a client's own value through to the app).

Usage: decision.py RENDERED-DECISION.yaml INGRESS-DIR COMPOSE-DIR
"""

import re
import sys

import yaml

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def docs(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]


def identity(config):
    ids = config["auth"]["identity_headers"]
    return {ids["subject"].lower(), *(h.lower() for h in ids.get("claims", {}).values())}


def port_of(listen):
    return int(listen.rsplit(":", 1)[1])


def main(rendered, ingress_dir, compose_dir):
    objects = docs(rendered)
    config_map = next(o for o in objects if o["kind"] == "ConfigMap" and "tokengate.yaml" in o.get("data", {}))
    config = yaml.safe_load(config_map["data"]["tokengate.yaml"])
    names = identity(config)
    port = port_of(config["decision"]["listen"])
    if "secret_env" not in config["decision"] and "secret_file" not in config["decision"]:
        problem("decision/tokengate.yaml", "the example must set a secret: it listens beyond loopback")
    service = next(o for o in objects if o["kind"] == "Service")
    if [p["port"] for p in service["spec"]["ports"]] != [port]:
        problem("decision Service", f"ports are not the decision port {port}")
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    env = {e["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
    if config["decision"].get("secret_env") and config["decision"]["secret_env"] not in env:
        problem("decision Deployment", f"does not set {config['decision']['secret_env']}")
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"

    for o in docs(f"{ingress_dir}/kubernetes/ingress-nginx.yaml"):
        if o["kind"] == "Ingress":
            a = o["metadata"]["annotations"]
            want = f"http://{host}:{port}/nginx"
            if a["nginx.ingress.kubernetes.io/auth-url"] != want:
                problem("ingress-nginx", f"auth-url is not {want}")
            copied = {h.strip().lower() for h in a["nginx.ingress.kubernetes.io/auth-response-headers"].split(",")}
            if copied != names:
                problem("ingress-nginx", f"auth-response-headers {sorted(copied)} != identity headers {sorted(names)}")
        if o["kind"] == "ConfigMap" and "X-Tokengate-Secret" not in o["data"]:
            problem("ingress-nginx", "the auth headers ConfigMap does not send X-Tokengate-Secret")

    chain = {o["metadata"]["name"]: o["spec"] for o in docs(f"{ingress_dir}/kubernetes/traefik.yaml")}
    fa = chain["tokengate"]["forwardAuth"]
    if fa["address"] != f"http://{host}:{port}/forward-auth":
        problem("traefik", "forwardAuth does not ask the /forward-auth front door")
    if {h.lower() for h in fa["authResponseHeaders"]} != names:
        problem("traefik", "authResponseHeaders are not exactly the identity headers")
    if "X-Tokengate-Secret" not in chain["tokengate-secret"]["headers"]["customRequestHeaders"]:
        problem("traefik", "no middleware adds the secret")
    if chain["tokengate-secret-drop"]["headers"]["customRequestHeaders"].get("X-Tokengate-Secret") != "":
        problem("traefik", "no middleware removes the secret before the app")

    for o in docs(f"{ingress_dir}/kubernetes/istio.yaml"):
        if o["kind"] == "AuthorizationPolicy" and (o["spec"]["action"], o["spec"]["provider"]["name"]) != ("CUSTOM", "tokengate"):
            problem("istio", "the AuthorizationPolicy does not delegate to the tokengate provider")
        if o["kind"] == "ConfigMap":
            mesh = yaml.safe_load(o["data"]["mesh"])
            p = next(x for x in mesh["extensionProviders"] if x["name"] == "tokengate")["envoyExtAuthzHttp"]
            if (p["service"], p["port"], p["pathPrefix"]) != (host, port, "/envoy"):
                problem("istio", "the provider does not ask the /envoy front door of the decision Service")
            if {h.lower() for h in p["headersToUpstreamOnAllow"]} != names:
                problem("istio", "headersToUpstreamOnAllow are not exactly the identity headers")
            if "x-tokengate-secret" not in p.get("includeAdditionalHeadersInCheck", {}):
                problem("istio", "the provider does not send the secret")

    compose_config = yaml.safe_load(open(f"{compose_dir}/tokengate.yaml"))
    conf = open(f"{compose_dir}/nginx.conf").read()
    set_headers = {h.lower() for h in re.findall(r"proxy_set_header\s+(\S+)\s+\$tg_", conf)}
    if set_headers != identity(compose_config):
        problem("compose nginx.conf", f"sets {sorted(set_headers)}, not the identity headers")
    if f"tokengate:{port_of(compose_config['decision']['listen'])}/nginx" not in conf:
        problem("compose nginx.conf", "does not ask tokengate's /nginx front door")
    for header in ("X-Original-URI", "X-Original-Method", "X-Tokengate-Secret"):
        if f"proxy_set_header {header} " not in conf:
            problem("compose nginx.conf", f"the auth location does not set {header}")

    for p in problems:
        print(f"FAIL {p}")
    if not problems:
        print("ok   decision-mode examples agree with tokengate's config")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
