#!/usr/bin/env bash
# A fire drill of issue 7's first check, against the built-in simulator on loopback: the webhook
# receiver is down for five minutes while Graph plays an incident (new, updated, an advisory, the
# incident resolved, the admin center degraded and back); then it comes back, and every alert
# must arrive afterwards, in order, each once per idempotency key, signed.
#
#   cargo build --release && examples/receiver-down-drill.sh [path/to/statusmon]
#
# Needs curl and python3. Takes about seven minutes. Ports: 8911 (simulator), 8912 (API).
set -euo pipefail
BIN=${1:-target/release/statusmon}
DIR=$(mktemp -d)
SIM=http://127.0.0.1:8911
"$BIN" simulate --listen 127.0.0.1:8911 > "$DIR/sim.out" 2>&1 &
SIM_PID=$!
trap 'kill $SIM_PID ${RUN_PID:-} 2>/dev/null || true' EXIT
sleep 1
cat > "$DIR/config.toml" <<TOML
[server]
listen = "127.0.0.1:8912"
[store]
path = "$DIR/state.db"
[[channels]]
id = "contoso-graph"
kind = "graph"
tenant_id = "contoso.onmicrosoft.com"
client_id = "drill"
authority = "$SIM"
graph_url = "$SIM"
interval = "10s"
[[channels]]
id = "m365-public"
kind = "m365_status_site"
base_url = "$SIM"
interval = "10s"
[[targets]]
id = "contoso"
channels = ["contoso-graph", "m365-public"]
[[sinks]]
id = "ops"
kind = "webhook"
url = "$SIM/hooks/webhook/ops"
[[routes]]
id = "all"
sinks = ["ops"]
TOML
# The simulator's own secrets (not real ones), from the environment as a real deployment would.
STATUSMON_CHANNEL__CONTOSO_GRAPH__CLIENT_SECRET=sim-secret \
STATUSMON_SINK__OPS__SECRET='whsec_YNWr6s+9FMGDhUpddAVtnPxBdXwZJ+bWb+YGf8tsme8=' \
  "$BIN" run --config "$DIR/config.toml" > "$DIR/run.out" 2>&1 &
RUN_PID=$!
sleep 15
step() { echo "$(date -u +%T) $*"; }
curl -fsS -X POST "$SIM/_sim/hooks/webhook/ops/down" > /dev/null; step "receiver down"
for scenario in graph/scenario/incident graph/scenario/advisory graph/scenario/incident-restored \
                scenario/admin-degraded; do
  curl -fsS -X PUT "$SIM/_sim/$scenario" > /dev/null; step "simulator: $scenario"; sleep 60
done
curl -fsS -X PUT "$SIM/_sim/graph/scenario/healthy" > /dev/null
curl -fsS -X PUT "$SIM/_sim/scenario/healthy" > /dev/null; step "simulator: healthy"; sleep 60
curl -fsS -X POST "$SIM/_sim/hooks/webhook/ops/up" > /dev/null; step "receiver up"
sleep 75
curl -fsS "$SIM/_sim/hooks?receiver=webhook/ops" > "$DIR/hooks.json"
curl -fsS "http://127.0.0.1:8912/api/v1/deliveries?limit=1000" > "$DIR/deliveries.json"
python3 - "$DIR" <<'PY'
import json, sys
d = sys.argv[1]
hooks = json.load(open(f"{d}/hooks.json"))["deliveries"]
receipts = json.load(open(f"{d}/deliveries.json"))["deliveries"]
queued = sorted({(r["outbox_id"], r["idempotency_key"]) for r in receipts})
accepted = [h["idempotency_key"] for h in hooks if not h["refused"]]
refused = sum(1 for h in hooks if h["refused"])
print(f"{len(queued)} alerts queued, {refused} attempts refused while down, {len(accepted)} accepted after")
ok = accepted == [key for _, key in queued]
print("in outbox order, each once:", ok)
print("signatures:", sorted({h["signature"] for h in hooks if not h["refused"]}))
sys.exit(0 if ok and queued else 1)
PY
