#!/usr/bin/env python3
"""Assertions on a rendered Kiln chart (tests/helm/check.sh).

Usage: assert_rendered.py <rendered.yaml> <mode> <backend> [zones] [hpa]
zones: how many zone-aware ingester StatefulSets (0: none); hpa: "hpa" when
the distributors' and queriers' autoscalers are on.
Exits 1 with one line per broken rule.
"""
import sys

import yaml

WORKLOADS = ("Deployment", "StatefulSet")


def pod_specs(objs):
    for o in objs:
        if o["kind"] in WORKLOADS:
            yield o, o["spec"]["template"]["spec"]


def flags(container):
    return [a for a in container.get("args", []) if a.startswith("-")]


def check(objs, mode, backend, zones, hpa, errors):
    kinds = {}
    for o in objs:
        kinds.setdefault(o["kind"], []).append(o)

    # Every pod: probes, non-root, read-only root, no capabilities, seccomp.
    for o, spec in pod_specs(objs):
        name = o["metadata"]["name"]
        psc = spec.get("securityContext", {})
        if not psc.get("runAsNonRoot") or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            errors.append(f"{name}: pod securityContext lacks runAsNonRoot or RuntimeDefault seccomp")
        for c in spec["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe not in c:
                    errors.append(f"{name}/{c['name']}: no {probe}")
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem"):
                errors.append(f"{name}/{c['name']}: root filesystem not read-only")
            if sc.get("allowPrivilegeEscalation") is not False:
                errors.append(f"{name}/{c['name']}: privilege escalation allowed")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                errors.append(f"{name}/{c['name']}: capabilities not all dropped")
            if c["name"] != "nats" and psc.get("runAsUser") != 10001:
                errors.append(f"{name}/{c['name']}: not uid 10001")
            if c["name"] != "nats" and "requests" not in c.get("resources", {}):
                errors.append(f"{name}/{c['name']}: no resource requests")

    # Every workload has a PodDisruptionBudget selecting its pods.
    pdbs = [p["spec"]["selector"]["matchLabels"] for p in kinds.get("PodDisruptionBudget", [])]
    for o, spec in pod_specs(objs):
        labels = o["spec"]["template"]["metadata"]["labels"]
        if not any(all(labels.get(k) == v for k, v in sel.items()) for sel in pdbs):
            errors.append(f"{o['metadata']['name']}: no PodDisruptionBudget selects its pods")

    # No ReadWriteMany claim with an object store.
    claims = list(kinds.get("PersistentVolumeClaim", []))
    for o in kinds.get("StatefulSet", []):
        claims += o["spec"].get("volumeClaimTemplates", [])
    rwx = [c["metadata"]["name"] for c in claims if "ReadWriteMany" in c["spec"]["accessModes"]]
    if backend == "s3" and rwx:
        errors.append(f"s3 backend, yet ReadWriteMany claims: {rwx}")
    if backend == "filesystem" and mode == "microservices" and not rwx:
        errors.append("filesystem backend in microservices mode without the shared claim")

    if mode == "single":
        svcs = {s["metadata"]["name"]: s for s in kinds.get("Service", [])}
        sts = kinds["StatefulSet"][0]
        gov = svcs.get(sts["spec"]["serviceName"])
        if gov is None or gov["spec"].get("clusterIP") != "None":
            errors.append("single: the StatefulSet's serviceName is not a headless Service")
        for s in svcs.values():
            if 4317 not in [p["port"] for p in s["spec"]["ports"]]:
                errors.append(f"single: Service {s['metadata']['name']} does not expose OTLP 4317")
        return

    rf = None
    ingesters = 0
    zone_flags = set()
    node_zones = set()
    for o, spec in pod_specs(objs):
        c = spec["containers"][0]
        args = flags(c)
        target = next((a.split("=", 1)[1] for a in args if a.startswith("-target=")), "")
        for a in args:
            if a.startswith("-distributor.replication-factor="):
                rf = int(a.split("=", 1)[1])
        if target != "ingester":
            continue
        ingesters += o["spec"]["replicas"]
        anti = spec.get("affinity", {}).get("podAntiAffinity", {})
        req = anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])
        if not any(t.get("topologyKey") == "kubernetes.io/hostname" for t in req):
            errors.append(f"{o['metadata']['name']}: no required ingester anti-affinity per node")
        keys = [t["topologyKey"] for t in spec.get("topologySpreadConstraints", [])]
        if "topology.kubernetes.io/zone" not in keys:
            errors.append(f"{o['metadata']['name']}: ingesters not spread across zones")
        strategy = o["spec"].get("updateStrategy", {}).get("type", "RollingUpdate")
        if zones and strategy != "OnDelete":
            errors.append(f"{o['metadata']['name']}: zones roll together ({strategy})")
        for a in args:
            if a.startswith("-ingester.availability-zone="):
                zone = a.split("=", 1)[1]
                zone_flags.add(zone)
                pinned = spec.get("nodeSelector", {}).get("topology.kubernetes.io/zone")
                if zones and not pinned:
                    errors.append(f"{o['metadata']['name']}: zone {zone} not pinned to a node zone")
                node_zones.add(pinned)
    if rf is None or ingesters < rf:
        errors.append(f"replication factor {rf} with {ingesters} ingesters")
    if zones and len(node_zones) != zones:
        errors.append(f"{zones} zones expected, ingesters pinned to {sorted(node_zones)}")
    if zones and len(zone_flags) != zones:
        errors.append(f"{zones} zones expected, -ingester.availability-zone gives {sorted(zone_flags)}")
    for comp in ("distributor", "querier") if hpa else ():
        if not any(h["spec"]["scaleTargetRef"]["name"].endswith(comp)
                   for h in kinds.get("HorizontalPodAutoscaler", [])):
            errors.append(f"no HorizontalPodAutoscaler for the {comp}s")


def main():
    path, mode, backend = sys.argv[1:4]
    zones = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    hpa = len(sys.argv) > 5 and sys.argv[5] == "hpa"
    with open(path) as f:
        objs = [o for o in yaml.safe_load_all(f) if o]
    errors = []
    check(objs, mode, backend, zones, hpa, errors)
    for e in errors:
        print("  assert:", e)
    print(f"  {len(objs)} objects, {len(errors)} broken rules")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
