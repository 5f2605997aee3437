#!/usr/bin/env python3
"""Makes kubeconform-ready standalone schemas from kubernetes-validate's.

kubernetes-validate (PyPI) ships one strict JSON schema per kind, e.g.
v1.30.0-local-strict/deployment-apps-v1.json, whose $refs point into a shared
/api/_definitions.json that kubeconform cannot resolve from a local
directory. This copies each kind's schema with the definitions it reaches
(transitively) under its own "definitions" (kubeconform compiles them as
draft 4) and every $ref rewritten to "#/definitions/..",
so each file stands alone; recursive definitions stay references.

Usage: k8s_schemas.py <kubernetes-json-schema dir> <version> <out dir>
Writes <out dir>/<kind>-<group>-<version>.json, kubeconform's file names.
"""
import json
import os
import sys

# Kind files refer into the shared file; definitions refer within it.
PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")


def refs(node, found):
    """Collects the definition names node refers to, rewriting the refs."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        for prefix in PREFIXES:
            if isinstance(ref, str) and ref.startswith(prefix):
                name = ref[len(prefix):]
                node["$ref"] = "#/definitions/" + name
                found.add(name)
                break
        for value in node.values():
            refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)


def standalone(schema, defs):
    """schema with every definition it reaches under definitions."""
    wanted, done, out = set(), set(), {}
    refs(schema, wanted)
    while wanted - done:
        name = (wanted - done).pop()
        done.add(name)
        body = json.loads(json.dumps(defs[name]))
        refs(body, wanted)
        out[name] = body
    schema["definitions"] = out
    return schema


def main():
    src_root, version, out = sys.argv[1], sys.argv[2], sys.argv[3]
    src = os.path.join(src_root, f"v{version}-local-strict")
    with open(os.path.join(src, "_definitions.json")) as f:
        defs = json.load(f)["$defs"]
    os.makedirs(out, exist_ok=True)
    count = 0
    for name in sorted(os.listdir(src)):
        if not name.endswith(".json") or name.startswith("_") or name == "all.json":
            continue
        with open(os.path.join(src, name)) as f:
            schema = json.load(f)
        with open(os.path.join(out, name), "w") as f:
            json.dump(standalone(schema, defs), f)
        count += 1
    print(f"k8s_schemas: {count} standalone schemas of Kubernetes {version} in {out}")


if __name__ == "__main__":
    main()
