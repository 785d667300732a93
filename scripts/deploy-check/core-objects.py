"""Prints the core Kubernetes objects (v1, apps/v1, networking.k8s.io/v1) of
the given multi-document YAML files, for kubernetes-validate; custom
resources are left to crds.mjs.

Usage: core-objects.py FILE... > CORE.yaml
"""

import sys

import yaml

CORE = ("v1", "apps/v1", "networking.k8s.io/v1")
docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d and d["apiVersion"] in CORE]
yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)
