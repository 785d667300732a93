"""Cross-checks between deploy/ files that no schema can see.

Schemas say each object is well formed; these checks say the objects agree
with each other and with tokengate's config: the probes hit the admin port
the config binds, the Service reaches the port tokengate listens on, the grace
period covers the drain, the sidecar is native or classic as the variant
says, every key file the config names is projected into the pod, and in the
compose file only tokengate publishes a port.

Usage:
  semantics.py kubernetes native|classic RENDERED.yaml MONITORING.yaml
  semantics.py compose RESOLVED.yaml (`docker-compose config` output)
               TOKENGATE.yaml PROMETHEUS.yml
"""

import re
import sys

import yaml

INJECT = "tokengate.io/inject"
SIDECAR_LABEL = ("tokengate.io/sidecar", "true")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
# Seconds beyond preStop + shutdown.delay + drain_timeout for the runtime to
# deliver signals and reap.
GRACE_MARGIN = 5

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", str(text))
    if not m:
        raise ValueError(f"unparsable duration {text!r}")
    n, unit = int(m.group(1)), m.group(2)
    return {"ms": n / 1000, "s": n, "m": n * 60, "h": n * 3600}[unit]


def port_of(addr):
    return int(str(addr).rsplit(":", 1)[1])


class TokengateConfig:
    def __init__(self, text, where):
        cfg = yaml.safe_load(text)
        self.listen = port_of(cfg.get("listen", "0.0.0.0:8080"))
        self.admin = port_of(cfg.get("admin", {}).get("listen", "0.0.0.0:9090"))
        shutdown = cfg.get("shutdown", {})
        self.delay = seconds(shutdown.get("delay", "0s"))
        self.drain = seconds(shutdown.get("drain_timeout", "25s"))
        self.upstream = cfg["upstream"]["url"]
        # Every relative file the config reads, so the pod must hold it.
        self.files = set()
        for issuer in cfg.get("auth", {}).get("issuers", []):
            for key in issuer.get("keys", []):
                for field in ("public_key_file", "secret_file", "private_key_file"):
                    if field in key:
                        self.files.add(key[field])
            if "jwks_file" in issuer:
                self.files.add(issuer["jwks_file"])
        redis = cfg.get("revocation", {}).get("redis", {})
        if "password_file" in redis:
            self.files.add(redis["password_file"])
        for f in self.files:
            if f.startswith("/"):
                problem(where, f"{f}: use paths relative to the config, so the same file validates in CI")


def container_port(container, ref):
    if isinstance(ref, int):
        return ref
    for p in container.get("ports", []):
        if p.get("name") == ref:
            return p["containerPort"]
    return None


def check_kubernetes(mode, rendered, monitoring):
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    monitors = [d for d in yaml.safe_load_all(open(monitoring)) if d]
    maps = [d for d in docs if d["kind"] == "ConfigMap" and "tokengate.yaml" in d.get("data", {})]
    if len(maps) != 1:
        problem(rendered, f"expected one ConfigMap holding tokengate.yaml, found {len(maps)}")
        return
    config_map = maps[0]["metadata"]["name"]
    cfg = TokengateConfig(maps[0]["data"]["tokengate.yaml"], f"{rendered}: ConfigMap {config_map}")
    host = re.sub(r"^https?://", "", cfg.upstream).rsplit(":", 1)[0]
    if host not in LOOPBACK:
        problem(config_map, f"upstream.url {cfg.upstream}: the app must be on the pod's loopback")
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}

    deployments = [d for d in docs if d["kind"] == "Deployment" and d["metadata"].get("labels", {}).get(INJECT) == "true"]
    if not deployments:
        problem(rendered, "no Deployment labelled tokengate.io/inject")
    for d in deployments:
        where = f"{rendered}: Deployment {d['metadata']['name']}"
        template = d["spec"]["template"]
        pod = template["spec"]
        labels = template["metadata"].get("labels", {})
        if labels.get(SIDECAR_LABEL[0]) != SIDECAR_LABEL[1]:
            problem(where, "pod template lacks tokengate.io/sidecar=true (PodMonitor, NetworkPolicy)")
        inits = [c for c in pod.get("initContainers", []) if c["name"] == "tokengate"]
        mains = [c for c in pod["containers"] if c["name"] == "tokengate"]
        if mode == "native":
            if len(inits) != 1 or mains:
                problem(where, "native variant: tokengate must be exactly one init container")
                continue
            tg = inits[0]
            if tg.get("restartPolicy") != "Always":
                problem(where, "native sidecar needs restartPolicy: Always")
        else:
            if len(mains) != 1 or inits:
                problem(where, "classic variant: tokengate must be exactly one regular container")
                continue
            tg = mains[0]
            if "restartPolicy" in tg:
                problem(where, "restartPolicy is valid on init containers only")
        apps = [c for c in pod["containers"] if c["name"] != "tokengate"]

        if container_port(tg, "tg-http") != cfg.listen:
            problem(where, f"port tg-http must be the config's listen port {cfg.listen}")
        if container_port(tg, "tg-admin") != cfg.admin:
            problem(where, f"port tg-admin must be the config's admin port {cfg.admin}")
        for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            http = tg.get(probe, {}).get("httpGet")
            if not http:
                problem(where, f"tokengate needs an httpGet {probe}")
                continue
            if container_port(tg, http["port"]) != cfg.admin or http["path"] != path:
                problem(where, f"{probe} must be GET {path} on the admin port {cfg.admin}")

        env = {e["name"]: e.get("value") for e in tg.get("env", [])}
        if env.get("TOKENGATE_THREADS") != "1":
            problem(where, "TOKENGATE_THREADS must be 1 (current-thread scheduler)")
        sc = tg.get("securityContext", {})
        for field, want in (("runAsNonRoot", True), ("allowPrivilegeEscalation", False), ("readOnlyRootFilesystem", True)):
            if sc.get(field) is not want:
                problem(where, f"tokengate securityContext.{field} must be {want}")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problem(where, "tokengate must drop ALL capabilities")
        res = tg.get("resources", {})
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(part, {}):
                    problem(where, f"tokengate resources.{part}.{r} missing")

        # The config file and every file it names must be in the mounted volume.
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        config_path = env.get("TOKENGATE_CONFIG", "")
        mounted = None
        for m in tg.get("volumeMounts", []):
            if config_path.startswith(m["mountPath"].rstrip("/") + "/"):
                mounted = (m, volumes.get(m["name"]))
        if not mounted or not mounted[1]:
            problem(where, f"TOKENGATE_CONFIG {config_path} is not in a mounted volume")
        else:
            mount, volume = mounted
            files = set()
            for source in volume.get("projected", {}).get("sources", []):
                if "configMap" in source and source["configMap"]["name"] == config_map:
                    files.add("tokengate.yaml")
                if "secret" in source:
                    name = source["secret"]["name"]
                    for item in source["secret"].get("items", []):
                        files.add(item["path"])
                        if item["key"] not in secrets.get(name, {}).get("data", {}):
                            problem(where, f"Secret {name} has no key {item['key']}")
            rel = config_path[len(mount["mountPath"].rstrip("/")) + 1:]
            for f in {rel} | cfg.files:
                if f not in files:
                    problem(where, f"{f} is not projected into {mount['mountPath']}")

        pre_stop = 0
        for c in apps:
            cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            if len(cmd) == 2 and cmd[0] == "sleep":
                pre_stop = max(pre_stop, int(cmd[1]))
        need = (pre_stop if mode == "native" else 0) + cfg.delay + cfg.drain + GRACE_MARGIN
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if grace < need:
            problem(where, f"terminationGracePeriodSeconds {grace} < preStop {pre_stop}s + delay {cfg.delay}s + drain {cfg.drain}s + {GRACE_MARGIN}s")

        for m in monitors:
            if m["kind"] != "PodMonitor":
                continue
            sel = m["spec"]["selector"].get("matchLabels", {})
            if any(labels.get(k) != v for k, v in sel.items()):
                problem(where, f"PodMonitor {m['metadata']['name']} does not select this pod")
            for ep in m["spec"]["podMetricsEndpoints"]:
                if container_port(tg, ep["port"]) != cfg.admin:
                    problem(where, f"PodMonitor port {ep['port']} is not tokengate's admin port")

    for s in docs:
        if s["kind"] == "Service" and s["metadata"].get("labels", {}).get(INJECT) == "true":
            if s["spec"]["ports"][0]["targetPort"] != cfg.listen:
                problem(f"{rendered}: Service {s['metadata']['name']}", f"targetPort must be tokengate's {cfg.listen}")
    for p in docs:
        if p["kind"] == "NetworkPolicy" and p["spec"]["podSelector"].get("matchLabels") == dict([SIDECAR_LABEL]):
            ports = {port["port"] for rule in p["spec"].get("ingress", []) for port in rule.get("ports", [])}
            if ports != {cfg.listen, cfg.admin}:
                problem(f"{rendered}: NetworkPolicy {p['metadata']['name']}", f"must admit exactly ports {cfg.listen} and {cfg.admin}, has {sorted(ports)}")


def check_compose(resolved, config, prometheus):
    compose = yaml.safe_load(open(resolved))
    cfg = TokengateConfig(open(config).read(), config)
    services = compose["services"]
    published = [name for name, s in services.items() if s.get("ports")]
    if published != ["tokengate"]:
        problem(resolved, f"only tokengate may publish a port; publishing: {published}")
    tg = services.get("tokengate", {})
    targets = {
        int(str(p["target"] if isinstance(p, dict) else p).split("/")[0].rsplit(":", 1)[-1]) for p in tg.get("ports", [])
    }
    if targets != {cfg.listen}:
        problem(resolved, f"tokengate publishes {sorted(targets)}, its config listens on {cfg.listen}")
    for name, s in services.items():
        if name == "tokengate":
            continue
        for net in s.get("networks", {}):
            if not compose["networks"].get(net, {}).get("internal"):
                problem(resolved, f"{name} is on non-internal network {net}")
    grace = seconds(tg.get("stop_grace_period", "10s"))
    if grace < cfg.delay + cfg.drain + GRACE_MARGIN:
        problem(resolved, f"stop_grace_period {grace}s < delay + drain_timeout + {GRACE_MARGIN}s")
    if tg.get("read_only") is not True:
        problem(resolved, "tokengate read_only must be true")
    if "ALL" not in tg.get("cap_drop", []):
        problem(resolved, "tokengate must drop ALL capabilities")
    prom = yaml.safe_load(open(prometheus))
    scraped = {t for job in prom["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    if f"tokengate:{cfg.admin}" not in scraped:
        problem(prometheus, f"does not scrape tokengate:{cfg.admin}")


def main(argv):
    if argv[:1] == ["kubernetes"] and len(argv) == 4 and argv[1] in ("native", "classic"):
        check_kubernetes(argv[1], argv[2], argv[3])
    elif argv[:1] == ["compose"] and len(argv) == 4:
        check_compose(argv[1], argv[2], argv[3])
    else:
        sys.exit(__doc__)
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"ok   {' '.join(argv[:2])}: cross-checks hold")


if __name__ == "__main__":
    main(sys.argv[1:])
