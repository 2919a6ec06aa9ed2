#!/usr/bin/env python3
"""Offline checks used by deploy/validate.sh (needs PyYAML).

  validate_helpers.py promql PROMTOOL DASHBOARD.json ALERTS.yml
      Every PromQL expression of the dashboard and the alert rules uses only
      known metric names, and every dashboard expression parses (checked by
      `promtool check rules` on a generated file of recording rules).

  validate_helpers.py k8s RENDERED.yaml
      Cross-references in `kubectl kustomize` output that no schema covers:
      KEDA targets and credentials (the shards' sum with WEBHOOK_SHARDS),
      probes, grace periods, PodMonitor.

  validate_helpers.py grafana DATASOURCES.yml PROVIDERS.yml DASHBOARD.json
      The dashboard refers only to the provisioned Prometheus datasource uid,
      and a provider loads the folder compose mounts the dashboards into.
"""

import json
import re
import subprocess
import sys
import tempfile

import yaml

# Section 7 of the contract, plus what the process collector and Prometheus
# itself provide. rabbitmq_* is allowed as a prefix.
CONTRACT_METRICS = {
    "webhook_attempts_total",
    "webhook_delivered_total",
    "webhook_retried_total",
    "webhook_dropped_total",
    "webhook_in_flight",
    "webhook_broker_connected",
    "webhook_broker_reconnects_total",
}
CONTRACT_HISTOGRAMS = {
    "webhook_attempt_duration_seconds",
    "webhook_delivery_latency_seconds",
}
# The worker's own, beyond the contract (docs/operations.md, Metrics).
WORKER_METRICS = {
    "webhook_settle_failures_total",
    "webhook_publish_failures_total",
    "webhook_deferred_total",
    "webhook_consumer_rotations_total",
}
OTHER_METRICS = {
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
    "up",
}
ALLOWED = (
    CONTRACT_METRICS
    | WORKER_METRICS
    | OTHER_METRICS
    | {h + s for h in CONTRACT_HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
)
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without",
            "on", "ignoring", "group_left", "group_right"}

# Dashboard variables, replaced by something PromQL accepts.
GRAFANA_VARS = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "${prefix}": "webhooks",
    "$instance": ".+",
}


def metric_names(expr):
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"'(?:[^'\\]|\\.)*'", "''", s)
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # range selectors
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.:])[A-Za-z_:][A-Za-z0-9_:]*", s):
        tok = m.group(0)
        if tok.lower() in KEYWORDS or re.match(r"\s*\(", s[m.end():]):
            continue  # keyword or function call
        names.add(tok)
    return names


def allowed(name):
    return name in ALLOWED or name.startswith("rabbitmq_")


def dashboard_exprs(path):
    with open(path) as f:
        dash = json.load(f)
    exprs = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    exprs.append((f'panel "{p.get("title")}"', t["expr"]))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else q or ""
            m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", q)
            if m:
                exprs.append((f'variable "{v["name"]}"', m.group(1)))
    return exprs


def alert_exprs(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    return [(f'alert "{r.get("alert") or r.get("record")}"', r["expr"])
            for g in doc["groups"] for r in g["rules"]]


def cmd_promql(promtool, dashboard, alerts):
    errors = []
    dash = dashboard_exprs(dashboard)
    rules = alert_exprs(alerts)
    if not dash:
        errors.append(f"{dashboard}: no expressions found")
    used = set()
    for where, expr in dash + rules:
        for name in metric_names(expr):
            used.add(name)
            if not allowed(name):
                errors.append(f"{where}: unknown metric {name!r} in: {expr}")

    # Let promtool parse the dashboard's expressions.
    records = []
    for i, (where, expr) in enumerate(dash):
        for var, val in GRAFANA_VARS.items():
            expr = expr.replace(var, val)
        if "$" in expr:
            errors.append(f"{where}: unhandled dashboard variable in: {expr}")
            continue
        records.append({"record": f"dashboard:expr_{i}", "expr": expr})
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as tmp:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}, tmp)
        tmp.flush()
        res = subprocess.run([promtool, "check", "rules", tmp.name],
                             capture_output=True, text=True)
        if res.returncode != 0:
            errors.append("dashboard expressions do not parse:\n" + res.stdout + res.stderr)

    print(f"{len(dash)} dashboard and {len(rules)} alert expressions; metrics used:")
    for name in sorted(used):
        print(f"  {name}")
    return errors


def cmd_k8s(rendered):
    with open(rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    errors = []

    def one(kind):
        items = by_kind.get(kind, [])
        if len(items) != 1:
            errors.append(f"expected exactly one {kind}, found {len(items)}")
            return None
        return items[0]

    dep, cm = one("Deployment"), one("ConfigMap")
    so, ta = one("ScaledObject"), one("TriggerAuthentication")
    pm, svc, pdb = one("PodMonitor"), one("Service"), one("PodDisruptionBudget")
    if None in (dep, cm, so, ta, pm, svc, pdb):
        return errors

    pod = dep["spec"]["template"]["spec"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    (ctr,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in ctr.get("ports", [])}

    def check(cond, msg):
        if not cond:
            errors.append(msg)

    def selects(selector):
        return all(pod_labels.get(k) == v for k, v in selector.items())

    # Config and secrets.
    check({"configMapRef": {"name": cm["metadata"]["name"]}} in ctr.get("envFrom", []),
          "container does not load the ConfigMap with envFrom")
    env = {e["name"]: e for e in ctr.get("env", [])}
    amqp = env.get("AMQP_URL", {}).get("valueFrom", {}).get("secretKeyRef")
    check(amqp is not None, "AMQP_URL does not come from a secretKeyRef")
    check("AMQP_URL" not in cm.get("data", {}), "AMQP_URL must not be in the ConfigMap")

    # Shutdown: the pod's grace period must outlast the worker's drain.
    grace = cm.get("data", {}).get("WEBHOOK_SHUTDOWN_GRACE", "30s")
    m = re.fullmatch(r"(\d+)(s|m)", grace)
    check(m is not None, f"cannot read WEBHOOK_SHUTDOWN_GRACE={grace!r}")
    if m:
        secs = int(m.group(1)) * (60 if m.group(2) == "m" else 1)
        check(pod.get("terminationGracePeriodSeconds", 30) > secs,
              f"terminationGracePeriodSeconds must exceed WEBHOOK_SHUTDOWN_GRACE ({secs}s)")

    # Probes and security.
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = ctr.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path, f"{probe} must GET {path}")
        check(get.get("port") in ports or get.get("port") in ports.values(),
              f"{probe} port {get.get('port')!r} is not a container port")
    check(ports.get("metrics") == 9102, "container port `metrics` must be 9102")
    sc = ctr.get("securityContext", {})
    check(pod.get("securityContext", {}).get("runAsNonRoot") or sc.get("runAsNonRoot"),
          "runAsNonRoot is not set")
    check(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true")
    check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false")
    check("limits" in ctr.get("resources", {}) and "requests" in ctr.get("resources", {}),
          "container resources need requests and limits")

    # Selectors.
    check(selects(dep["spec"]["selector"]["matchLabels"]), "Deployment selector misses its pods")
    check(selects(svc["spec"]["selector"]), "Service selector misses the pods")
    check(selects(pdb["spec"]["selector"]["matchLabels"]), "PDB selector misses the pods")
    check(selects(pm["spec"]["selector"]["matchLabels"]), "PodMonitor selector misses the pods")
    for ep in pm["spec"]["podMetricsEndpoints"]:
        check(ep.get("port") in ports, f"PodMonitor port {ep.get('port')!r} is not a container port")

    # KEDA: scale this Deployment on the work queue only, with the worker's credentials.
    spec = so["spec"]
    check(spec["scaleTargetRef"]["name"] == dep["metadata"]["name"],
          "ScaledObject does not target the Deployment")
    check(1 <= spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 0),
          "ScaledObject replica bounds are inconsistent")
    data = cm.get("data", {})
    shards = int(data.get("WEBHOOK_SHARDS", "1"))
    prefix = data.get("WEBHOOK_PREFIX", "webhooks")
    for trig in spec["triggers"]:
        md = trig.get("metadata", {})
        check(trig["type"] == "rabbitmq", "trigger is not rabbitmq")
        check(md.get("mode") == "QueueLength", "trigger mode is not QueueLength")
        if shards > 1:
            errors.extend(sharded_trigger_errors(md, prefix, shards))
        else:
            check(md.get("queueName") == f"{prefix}.deliveries",
                  f"trigger queue {md.get('queueName')!r} is not the work queue {prefix}.deliveries"
                  " (never a retry queue)")
        check(trig.get("authenticationRef", {}).get("name") == ta["metadata"]["name"],
              "trigger does not reference the TriggerAuthentication")
    refs = {(r["parameter"], r["name"], r["key"]) for r in ta["spec"].get("secretTargetRef", [])}
    if amqp and shards > 1:
        check(any(p == "host" and n == amqp["name"] and k != amqp["key"] for p, n, k in refs),
              "with shards, TriggerAuthentication `host` must be the management URL: another key"
              " of AMQP_URL's Secret (KEDA matches queues by regex only over HTTP)")
    elif amqp:
        check(("host", amqp["name"], amqp["key"]) in refs,
              "TriggerAuthentication `host` must use the Secret key that AMQP_URL uses")

    print(f"{len(docs)} objects: " + ", ".join(
        f'{d["kind"]}/{d["metadata"]["name"]}' for d in docs))
    return errors


def sharded_trigger_errors(md, prefix, shards):
    """KEDA's rabbitmq trigger over WEBHOOK_SHARDS work queues: the sum of
    ready messages of the queues its expression matches, which must be every
    shard and nothing else of the topology (section 2 and 9 names)."""
    errors = []
    want = {"protocol": "http", "useRegex": "true", "excludeUnacknowledged": "true"}
    for key, value in want.items():
        if md.get(key) != value:
            errors.append(f"sharded trigger needs {key}: {value!r}, has {md.get(key)!r}")
    if md.get("operation", "sum") != "sum":
        errors.append(f"sharded trigger must sum over the shards, has operation {md.get('operation')!r}")
    try:
        # The management API filters names with an unanchored match.
        rx = re.compile(md.get("queueName", ""))
    except re.error as e:
        return errors + [f"trigger queueName is not a regular expression: {e}"]
    shard_names = [f"{prefix}.deliveries.{k}" for k in range(shards)]
    missed = [q for q in shard_names if not rx.search(q)]
    if missed:
        errors.append(f"trigger expression misses shards {missed[:3]}")
    others = [f"{prefix}.deliveries", f"{prefix}.retry.60s", f"{prefix}.retry.24h",
              f"{prefix}.dead", f"{prefix}.log", f"{prefix}.deliveries.0.old",
              f"other{prefix}.deliveries.0", f"{prefix}xdeliveries.0"]
    counted = [q for q in others if rx.search(q)]
    if counted:
        errors.append(f"trigger expression also counts {counted}")
    return errors


def cmd_grafana(datasources, providers, dashboard):
    errors = []
    with open(datasources) as f:
        uids = {d.get("uid") for d in yaml.safe_load(f).get("datasources", [])}
    with open(providers) as f:
        paths = {p.get("options", {}).get("path") for p in yaml.safe_load(f).get("providers", [])}
    if "/var/lib/grafana/dashboards" not in paths:
        errors.append(f"{providers}: no provider reads /var/lib/grafana/dashboards (the compose mount)")
    with open(dashboard) as f:
        dash = json.load(f)
    refs = []

    def walk(node):
        if isinstance(node, dict):
            ds = node.get("datasource")
            if isinstance(ds, dict) and ds.get("type") == "prometheus":
                refs.append(ds.get("uid"))
            elif isinstance(ds, str):
                errors.append(f"datasource given by name or variable: {ds!r}")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(dash)
    for uid in sorted(set(refs) - uids):
        errors.append(f"dashboard refers to datasource uid {uid!r}, provisioned: {sorted(uids)}")
    if "${DS_" in json.dumps(dash) or "__inputs" in dash:
        errors.append("dashboard uses import-time ${DS_...} inputs")
    print(f"{len(refs)} Prometheus datasource references, all to {sorted(set(refs))}")
    return errors


def main(argv):
    if len(argv) >= 2 and argv[1] == "promql" and len(argv) == 5:
        errors = cmd_promql(*argv[2:])
    elif len(argv) == 5 and argv[1] == "grafana":
        errors = cmd_grafana(*argv[2:])
    elif len(argv) == 3 and argv[1] == "k8s":
        errors = cmd_k8s(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for e in errors:
        print(f"ERROR: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
