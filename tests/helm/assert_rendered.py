#!/usr/bin/env python3
"""Assertions on a rendered Kiln chart (tests/helm/check.sh).

Usage: assert_rendered.py <rendered.yaml> <mode> <backend> [option ...]
options: zones=N (N zone-aware ingester StatefulSets), hpa (the
distributors' and queriers' autoscalers are on), https (the HTTP port
speaks TLS), grpc-tls (the gRPC ports do), certmanager (Certificates are
rendered), nonetpol (networkPolicy.enabled=false).
Exits 1 with one line per broken rule.
"""
import os
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


def kiln_containers(objs):
    """(workload, pod spec, container, flags as a dict) of every kiln
    container: the ones started with -target=."""
    for o, spec in pod_specs(objs):
        for c in spec["containers"]:
            args = dict(a.split("=", 1) if "=" in a else (a, "") for a in flags(c))
            if "-target" in args:
                yield o, spec, c, args


def check_secrets(objs, mode, opts, errors):
    """TLS and credentials: each file a flag names lies in a read-only
    directory mount of a Secret (no subPath: a renewal must reach kiln);
    server TLS on in every container or in none, as expected, with HTTPS
    probes exactly when the HTTP port speaks TLS; in microservices mode
    every component has the cluster plane's mutual TLS."""
    want = {"-server.http-tls-cert-path": "https" in opts,
            "-server.grpc-tls-cert-path": "grpc-tls" in opts}
    cluster_names = set()
    n = 0
    for o, spec, c, args in kiln_containers(objs):
        n += 1
        name = f"{o['metadata']['name']}/{c['name']}"
        secret_dirs = {}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for m in c.get("volumeMounts", []):
            v = volumes.get(m["name"], {})
            if "secret" in v:
                if not m.get("readOnly") or "subPath" in m:
                    errors.append(f"{name}: Secret mount {m['mountPath']} not a read-only directory")
                secret_dirs[m["mountPath"]] = v["secret"]["secretName"]
        for flag, val in args.items():
            if flag.endswith(("-path", "-file")) and val.startswith("/etc/kiln-") and \
                    os.path.dirname(val) not in secret_dirs:
                errors.append(f"{name}: {flag}={val} is not in a mounted Secret")
        for flag, on in want.items():
            if (flag in args) != on:
                errors.append(f"{name}: {flag} {'missing' if on else 'set'}")
        https = "-server.http-tls-cert-path" in args
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = c.get(probe, {}).get("httpGet")
            if get and (get.get("scheme") == "HTTPS") != https:
                errors.append(f"{name}: {probe} scheme {get.get('scheme', 'HTTP')} with HTTPS {https}")
        if mode != "microservices":
            continue
        for flag in ("-cluster.tls-cert-path", "-cluster.tls-key-path", "-cluster.tls-ca-path",
                     "-cluster.tls-server-name", "-server.internal-grpc-listen-port"):
            if not args.get(flag):
                errors.append(f"{name}: no {flag} (kiln requires mutual TLS in a cluster)")
        cluster_names.add(args.get("-cluster.tls-server-name"))
        if args.get("-target") == "ingester":
            port = int(args.get("-server.internal-grpc-listen-port", "0"))
            if port not in [p["containerPort"] for p in c.get("ports", [])]:
                errors.append(f"{name}: the internal port {port} is not a container port")
            if not args.get("-server.internal-grpc-listen-address"):
                errors.append(f"{name}: no -server.internal-grpc-listen-address")
    if n == 0:
        errors.append("no kiln container")
    if len(cluster_names) > 1:
        errors.append(f"components disagree on -cluster.tls-server-name: {cluster_names}")

    certs = [o for o in objs if o["kind"] == "Certificate"]
    if ("certmanager" in opts) != bool(certs):
        errors.append(f"{len(certs)} cert-manager Certificates, certmanager expected: {'certmanager' in opts}")
    mounted = {v["secret"]["secretName"] for _, spec in pod_specs(objs)
               for v in spec.get("volumes", []) if "secret" in v}
    for cert in certs:
        cs = cert["spec"]
        cname = cert["metadata"]["name"]
        if cert["apiVersion"] != "cert-manager.io/v1" or not cs.get("issuerRef", {}).get("name"):
            errors.append(f"Certificate {cname}: not cert-manager.io/v1 or no issuerRef.name")
        if cs["secretName"] not in mounted:
            errors.append(f"Certificate {cname}: its Secret {cs['secretName']} is mounted nowhere")
        if "client auth" in cs.get("usages", []):
            if "server auth" not in cs["usages"] or not cluster_names <= set(cs["dnsNames"]):
                errors.append(f"Certificate {cname}: the cluster certificate lacks server auth "
                              f"or the name {cluster_names}")
    if mode == "microservices" and "certmanager" in opts and \
            not any("client auth" in c["spec"].get("usages", []) for c in certs):
        errors.append("certmanager: no cluster certificate (client auth)")

    for sm in (o for o in objs if o["kind"] == "ServiceMonitor"):
        for ep in sm["spec"]["endpoints"]:
            if "https" in opts and (ep.get("scheme") != "https" or not ep.get("tlsConfig")):
                errors.append("ServiceMonitor: HTTPS on, yet it scrapes without scheme https and tlsConfig")
            if "https" not in opts and ep.get("scheme") == "https":
                errors.append("ServiceMonitor: scheme https with plain HTTP")


def selects(sel, labels):
    """Whether a LabelSelector selects a pod with these labels."""
    if not all(labels.get(k) == v for k, v in sel.get("matchLabels", {}).items()):
        return False
    for e in sel.get("matchExpressions", []):
        key, op, vals = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels[key] in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def check_network_policy(objs, mode, opts, errors):
    """The internal port admits the release's own kiln pods only, the public
    ports admit someone, NATS admits the release's pods only, egress is
    left open. Rules are evaluated as Kubernetes does: a policy selecting a
    pod admits the union of its rules; a rule without ports covers every
    port, one without from admits every source."""
    pols = [o for o in objs if o["kind"] == "NetworkPolicy"]
    if "nonetpol" in opts:
        if pols:
            errors.append("networkPolicy.enabled=false, yet NetworkPolicies are rendered")
        return
    if not pols:
        errors.append("no NetworkPolicy")
        return
    pods = []
    release = None
    for o, spec in pod_specs(objs):
        labels = o["spec"]["template"]["metadata"]["labels"]
        release = labels["app.kubernetes.io/instance"]
        args = {}
        for c in spec["containers"]:
            args.update(a.split("=", 1) for a in flags(c) if "=" in a)
        pods.append((o["metadata"]["name"], labels, spec, args))
    kiln_pods = [p for p in pods if "-target" in p[3]]
    for p in pols:
        if "Egress" in p["spec"].get("policyTypes", []):
            errors.append(f"NetworkPolicy {p['metadata']['name']} restricts egress (documented open)")

    def rules_for(labels, port, port_name):
        """The ingress rules of the policies selecting these labels that
        cover the port; None when no policy selects the pod."""
        selecting = [p for p in pols if selects(p["spec"]["podSelector"], labels)]
        if not selecting:
            return None
        out = []
        for p in selecting:
            for r in p["spec"].get("ingress", []):
                ports = r.get("ports")
                if not ports or any(x.get("port") in (port, port_name) for x in ports):
                    out.append(r)
        return out

    def only_release(rules, what):
        if not rules:
            errors.append(f"{what}: admitted from nowhere")
        for r in rules:
            peers = r.get("from")
            if not peers:
                errors.append(f"{what}: admitted from anywhere")
                continue
            for peer in peers:
                ps = peer.get("podSelector")
                if set(peer) != {"podSelector"} or \
                        ps.get("matchLabels", {}).get("app.kubernetes.io/instance") != release:
                    errors.append(f"{what}: admits {peer}, not only the release's pods")
                elif not all(selects(ps, lab) for _, lab, _, a in kiln_pods
                             if a.get("-target") in ("distributor", "querier")):
                    errors.append(f"{what}: the distributors or queriers are not admitted")

    for name, labels, spec, args in kiln_pods:
        public = rules_for(labels, int(args["-server.http-listen-port"]), "http")
        if public is None:
            errors.append(f"{name}: no NetworkPolicy selects its pods")
            continue
        if not public:
            errors.append(f"{name}: the HTTP port admits no one")
        if args.get("-target") == "ingester":
            port = int(args.get("-server.internal-grpc-listen-port", "9096"))
            only_release(rules_for(labels, port, "grpc-internal"), f"{name}: internal port {port}")
    for name, labels, spec, args in pods:
        if labels.get("app.kubernetes.io/component") == "nats":
            rules = rules_for(labels, 4222, "client")
            if rules is None:
                errors.append(f"{name}: no NetworkPolicy selects the nats-server")
            else:
                only_release(rules, f"{name}: NATS 4222")


def main():
    path, mode, backend = sys.argv[1:4]
    opts = set(sys.argv[4:])
    zones = next((int(o.split("=", 1)[1]) for o in opts if o.startswith("zones=")), 0)
    with open(path) as f:
        objs = [o for o in yaml.safe_load_all(f) if o]
    errors = []
    check(objs, mode, backend, zones, "hpa" in opts, errors)
    check_secrets(objs, mode, opts, errors)
    check_network_policy(objs, mode, opts, errors)
    for e in errors:
        print("  assert:", e)
    print(f"  {len(objs)} objects, {len(errors)} broken rules")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
