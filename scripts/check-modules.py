#!/usr/bin/env python3
"""Fails when the crate's top-level modules depend on each other in a cycle,
or when a module that src/lib.rs calls a leaf imports one of ours.

A dependency is any `crate::NAME` path in a module's code (comments and
`#[cfg(test)]` modules excluded), where NAME is another top-level module.
Run by .ci/run; prints the graph with -v.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "src")


def code_of(path):
    text = open(path, encoding="utf-8").read()
    # Test modules may reach anywhere; they are not part of the layering.
    text = text.split("#[cfg(test)]\nmod tests")[0]
    lines = [l for l in text.splitlines() if not l.lstrip().startswith("//")]
    return "\n".join(lines)


def graph():
    modules = sorted(
        n[:-3] if n.endswith(".rs") else n
        for n in os.listdir(ROOT)
        if n not in ("lib.rs", "main.rs")
    )
    edges = {m: set() for m in modules}
    for m in modules:
        path = os.path.join(ROOT, m)
        files = [path + ".rs"] if os.path.isfile(path + ".rs") else []
        if os.path.isdir(path):
            files += [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.endswith(".rs")]
        for f in files:
            for used in re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", code_of(f)):
                if used in edges and used != m:
                    edges[m].add(used)
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(sorted(scc))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def declared_leaves():
    text = open(os.path.join(ROOT, "lib.rs"), encoding="utf-8").read()
    m = re.search(r"Leaves \(import nothing of ours\):([^.]*)\.", text.replace("//!", " "))
    if not m:
        sys.exit("src/lib.rs must say `Leaves (import nothing of ours): a, b, ...`.")
    return [x.strip(" `\n") for x in m.group(1).split(",") if x.strip(" `\n")]


def main():
    edges = graph()
    if "-v" in sys.argv:
        for m in sorted(edges):
            print(f"{m} -> {' '.join(sorted(edges[m])) or '(leaf)'}")
    failed = False
    for scc in cycles(edges):
        print("cycle between modules: " + " <-> ".join(scc), file=sys.stderr)
        failed = True
    for leaf in declared_leaves():
        if leaf not in edges:
            print(f"src/lib.rs names `{leaf}` a leaf, but there is no such module", file=sys.stderr)
            failed = True
        elif edges[leaf]:
            print(f"`{leaf}` is declared a leaf but imports {sorted(edges[leaf])}", file=sys.stderr)
            failed = True
    if failed:
        sys.exit(1)
    print(f"modules: {len(edges)}, no cycles, leaves as declared in src/lib.rs")


main()
