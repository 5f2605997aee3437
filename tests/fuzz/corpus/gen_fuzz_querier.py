#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Generates fuzz_querier's seed corpus: one valid request per method, in
# proto and JSON, with the selector byte the fuzz target reads.
import json, struct, os, sys
T0 = 1700000000000
S, E = T0 - 3600000, T0 + 3600000
TYPE = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7f; n >>= 7
        if n: out += bytes([b | 0x80])
        else: return out + bytes([b])

def enc(fields):
    out = b""
    for no, kind, v in fields:
        if kind in ("int", "enum", "bool", "uint"):
            out += varint(no << 3) + varint(int(v))
        elif kind == "double":
            out += varint(no << 3 | 1) + struct.pack("<d", v)
        elif kind == "str":
            b = v.encode()
            out += varint(no << 3 | 2) + varint(len(b)) + b
        elif kind == "msg":
            b = enc(v)
            out += varint(no << 3 | 2) + varint(len(b)) + b
    return out

def sel(call_site=None, pgo=None):
    f = [(1, "msg", [(1, "str", n)]) for n in (call_site or [])]
    if pgo: f.append((2, "msg", [(1, "uint", pgo)]))
    return f

stack = [(1, "str", TYPE), (2, "str", '{service_name="checkout"}'), (3, "int", S), (4, "int", E),
         (5, "int", 64), (6, "enum", 1), (7, "msg", sel(["main"]))]
stack_j = {"profileTypeID": TYPE, "labelSelector": '{service_name="checkout"}', "start": str(S),
           "end": str(E), "maxNodes": "64", "format": "PROFILE_FORMAT_FLAMEGRAPH",
           "stackTraceSelector": {"callSite": [{"name": "main"}]}}
reqs = [
    ("ProfileTypes", [(1, "int", S), (2, "int", E)], {"start": str(S), "end": str(E)}),
    ("LabelNames", [(1, "str", '{service_name="cart"}'), (2, "int", S), (3, "int", E)],
     {"matchers": ['{service_name="cart"}'], "start": str(S), "end": str(E)}),
    ("LabelValues", [(1, "str", "service.name"), (2, "str", "{}"), (3, "int", S), (4, "int", E)],
     {"name": "service.name", "matchers": ["{}"], "start": str(S), "end": str(E)}),
    ("Series", [(1, "str", '{zone="eu"}'), (2, "str", "pod"), (2, "str", "k8s.pod.name"), (3, "int", S), (4, "int", E)],
     {"matchers": ['{zone="eu"}'], "labelNames": ["pod", "k8s.pod.name"], "start": str(S), "end": str(E)}),
    ("SelectMergeStacktraces", stack, stack_j),
    ("SelectMergeSpanProfile", [(1, "str", TYPE), (2, "str", "{}"), (3, "str", "00000000000000ff"),
                                (4, "int", S), (5, "int", E), (6, "int", 16)],
     {"profileTypeID": TYPE, "labelSelector": "{}", "spanSelector": ["00000000000000ff"],
      "start": str(S), "end": str(E), "maxNodes": "16"}),
    ("AnalyzeQuery", [(2, "int", S), (3, "int", E), (4, "str", TYPE + '{service_name="cart"}')],
     {"start": str(S), "end": str(E), "query": TYPE + '{service_name="cart"}'}),
    ("SelectHeatmap", [(1, "str", TYPE), (2, "str", "{}"), (3, "int", S), (4, "int", E), (5, "double", 60.0)],
     {"profileTypeID": TYPE, "labelSelector": "{}", "start": str(S), "end": str(E), "step": 60}),
    ("SelectSeries", [(1, "str", TYPE), (2, "str", "{}"), (3, "int", S), (4, "int", E),
                      (5, "str", "service.name"), (6, "double", 60.0), (7, "enum", 1), (9, "int", 2)],
     {"profileTypeID": TYPE, "labelSelector": "{}", "start": str(S), "end": str(E),
      "groupBy": ["service.name"], "step": 60, "aggregation": "TIME_SERIES_AGGREGATION_TYPE_AVERAGE",
      "limit": "2"}),
    ("SelectMergeProfile", [(1, "str", TYPE), (2, "str", "{}"), (3, "int", S), (4, "int", E),
                            (6, "msg", sel([], 3)), (7, "str", "1")],
     {"profileTypeID": TYPE, "labelSelector": "{}", "start": str(S), "end": str(E),
      "stackTraceSelector": {"goPgo": {"keepLocations": 3}}}),
    ("Diff", [(1, "msg", stack), (2, "msg", stack[:4])],
     {"left": stack_j, "right": {k: stack_j[k] for k in ("profileTypeID", "labelSelector", "start", "end")}}),
    ("GetProfileStats", [], {}),
]
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_querier")
for i, (name, pb, js) in enumerate(reqs):
    with open(os.path.join(out, "%02d-%s.pb" % (i, name)), "wb") as f:
        f.write(bytes([i]) + enc(pb))
    with open(os.path.join(out, "%02d-%s.json" % (i, name)), "wb") as f:
        f.write(bytes([i | 0x10 | 0x20]) + json.dumps(js).encode())
