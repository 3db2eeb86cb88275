#!/usr/bin/env bash
# make demo: local cluster, the Helm chart installed, the operator (as the chart's ServiceAccount) with its
# webhook, an example deployed, its pod groups shown.
# Leaves everything running; `make demo-down` stops it. KUBECONFIG=.local-cluster/kubeconfig to use it.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
STATE=.local-cluster
EXAMPLE=${DEMO_EXAMPLE:-deploy/examples/mixtral-8x7b.yaml}

echo "== 1. the capacity model on every bundled plan (moectl validate)"
for f in deploy/examples/*.yaml deploy/examples/infeasible/*.yaml; do
  verdict=$( { $BIN/moectl validate -f "$f" -o json || true; } | $BIN/python -c 'import json,sys; d=json.load(sys.stdin); print("feasible  " if d["feasible"] else "INFEASIBLE", ", ".join(sorted({v["code"] for v in d["violations"]})), "| GPUs", d["totalGPUs"])')
  printf '   %-52s %s\n' "$f" "$verdict"
done
echo
echo "== 2. full report of $EXAMPLE"
$BIN/moectl validate -f "$EXAMPLE" || true

echo "== 3. local cluster (real apiserver, controller-manager, scheduler, etcd; kwok GPU nodes; Prometheus)"
$BIN/python deploy/local/cluster.py up >/dev/null
export KUBECONFIG=$PWD/$STATE/kubeconfig
KUBECTL="$(cat $STATE/state.json | $BIN/python -c 'import json,sys; print(json.load(sys.stdin)["bin"])')/kubectl"
$KUBECTL get nodes -L nvidia.com/gpu.product,nvidia.com/gpu.count

echo "== 4. helm install the chart (CRDs, ServiceAccount, least-privilege RBAC, webhook, peering, monitoring objects);"
echo "      the operator runs on this host as the chart's ServiceAccount (the simulated nodes run no containers)"
$KUBECTL apply --server-side --force-conflicts -f crds/ >/dev/null  # helm never upgrades CRDs: apply them first
if [ -f $STATE/operator.pid ] && kill -0 "$(cat $STATE/operator.pid)" 2>/dev/null; then
  echo "   operator already running (pid $(cat $STATE/operator.pid))"
else
  $BIN/python deploy/local/host_operator.py up --webhook-port 9443 --metrics-port 8080 --liveness-port 8081 | sed 's/^/   /'
fi
HELM="$(dirname "$KUBECTL")/helm"
$HELM --kubeconfig "$KUBECONFIG" list -n moe-system | sed 's/^/   /'
echo "   the operator's identity may not read Secrets elsewhere:"
$KUBECTL auth can-i get secrets -n kube-system --as system:serviceaccount:moe-system:moe-operator 2>&1 | sed 's/^/     can-i get secrets -n kube-system: /' || true

echo "== 5. an infeasible plan is refused at kubectl apply"
$KUBECTL apply -f deploy/examples/infeasible/memory-exceeded.yaml 2>&1 | sed 's/^/   /' | cut -c1-400 || true

echo "== 6. kubectl apply -f $EXAMPLE"
$KUBECTL apply -f "$EXAMPLE"
NAME=$($BIN/python -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["metadata"]["name"])' "$EXAMPLE")
$KUBECTL wait --for=jsonpath='{.status.phase}'=Ready moed/"$NAME" --timeout=180s >/dev/null
$KUBECTL get moed
echo
$BIN/moectl tree "$NAME"
echo

echo "== 7. engine simulator (vLLM metrics from the capacity model), scraped by the local Prometheus"
if [ -f $STATE/simulator.pid ] && kill -0 "$(cat $STATE/simulator.pid)" 2>/dev/null; then kill "$(cat $STATE/simulator.pid)"; fi
TARGETS=$($BIN/python -c 'import json; print(json.load(open(".local-cluster/state.json"))["prometheusTargetsDir"])')
nohup $BIN/moectl simulate-engine -f "$EXAMPLE" --port 9400 --requests-per-second 6 --skew 0.8 \
  --targets-file "$TARGETS/demo-simulator.json" > $STATE/logs/simulator.log 2>&1 &
echo $! > $STATE/simulator.pid
PROM=$($BIN/python -c 'import json; print(json.load(open(".local-cluster/state.json"))["prometheusURL"])')
for _ in $(seq 60); do
  n=$(curl -s "$PROM/api/v1/query" --data-urlencode 'query=sum(rate(vllm:prompt_tokens_total[30s]))' | $BIN/python -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")')
  [ -n "$n" ] && break
  sleep 1
done
echo "   simulator on http://127.0.0.1:9400/metrics (change the load: curl -XPOST 127.0.0.1:9400/load -d '{\"requestsPerSecond\": 12}')"
echo "   Prometheus $PROM: sum(rate(vllm:prompt_tokens_total[30s])) = ${n:-no data yet} prompt tokens/s"
echo
echo "Everything keeps running. Try:  export KUBECONFIG=$PWD/$STATE/kubeconfig; kubectl get moed,pods"
echo "Stop it all with:               make demo-down"
