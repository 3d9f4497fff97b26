#!/usr/bin/env bash
# Initial sync of a big catalog (issue 20): till A holds N products (imported offline), then
# (1) a fresh hub takes them from A, (2) a new till B of the same store takes them from the hub.
# Prints the time until each holds all N documents (`documents.held` in /sync/status) and every
# product row (B), and the peak RSS of each process sampled every 200 ms.
# Needs a release build (cargo build --release -p fusion-cli), or FUSION_BIN.
# Then (3) prices edited at the hub until B serves them, and with TILLS=N (4) N more new tills
# joining at once, for the hub's memory with a fleet.
# Usage: [TILLS=N] docs/bench/initial-sync.sh [PRODUCTS=100000]
set -euo pipefail
cd "$(dirname "$0")/../.."
products=${1:-100000}
fusion=${FUSION_BIN:-${CARGO_TARGET_DIR:-target}/release/fusion}
dir=$(mktemp -d)
pids=()
# Stops every process and waits for it (its ports free for the next run).
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$dir"' EXIT
hub_http=127.0.0.1:18390 hub_sync=127.0.0.1:18391
a_http=127.0.0.1:18392 b_http=127.0.0.1:18393

# Waits for the HTTP server at $1 of process $2 (which must not have died).
wait_http() {
    until curl -sf "http://$1/health" > /dev/null; do
        kill -0 "$2" 2>/dev/null || { echo "process $2 exited; its log:" >&2; tail -5 "$dir"/*.out >&2; exit 1; }
        sleep 0.05
    done
}
rss_mb() { awk '/VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
held() { curl -sf -H "Authorization: Bearer $2" "http://$1/sync/status" | grep -o '"documents":{"held":[0-9]*' | grep -o '[0-9]*$' || echo 0; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Waits until `held URL TOKEN` reaches N, sampling PID's RSS; prints "ms peak_mb".
watch_held() {
    local url=$1 token=$2 pid=$3 t0 peak=0 r
    t0=$(now_ms)
    while [ "$(held "$url" "$token")" -lt "$products" ]; do
        r=$(rss_mb "$pid"); [ "$r" -gt "$peak" ] && peak=$r
        sleep 0.2
    done
    r=$(rss_mb "$pid"); [ "$r" -gt "$peak" ] && peak=$r
    echo "$(( $(now_ms) - t0 )) $peak"
}

"$fusion" hub serve --data-dir "$dir/hub" --listen $hub_http --sync-bind $hub_sync > "$dir/hub.out" 2>&1 &
hub=$!; pids+=("$hub")
wait_http $hub_http $hub
until grep -q "sync endpoint: " "$dir/hub.out"; do sleep 0.05; done
endpoint=$(grep -o "sync endpoint: .*" "$dir/hub.out" | head -1 | cut -d' ' -f3)
hub_token=$(cat "$dir/hub/admin.token")
for till in a b; do
    id=$("$fusion" node id --data-dir "$dir/$till")
    "$fusion" hub enroll "$id" --store s1 --url "http://$hub_http" --data-dir "$dir/hub" > /dev/null
done

# Till A alone first: the catalog imported with no hub.
"$fusion" node serve --data-dir "$dir/a" --listen $a_http --store-id s1 > "$dir/a.out" 2>&1 &
a=$!; pids+=("$a")
wait_http $a_http $a
a_token=$(cat "$dir/a/admin.token")
{
    echo "sku,name,price,currency,inventory"
    for i in $(seq 1 "$products"); do echo "SKU$i,Product number $i,$((i % 97 + 1)).25,USD,100"; done
} > "$dir/catalog.csv"
FUSION_URL=http://$a_http FUSION_TOKEN=$a_token "$fusion" products import "$dir/catalog.csv" > /dev/null
kill "$a"; wait "$a" 2>/dev/null || true

# (1) A with the hub: the hub takes every document.
"$fusion" node serve --data-dir "$dir/a" --listen $a_http --store-id s1 --hub "$endpoint" > "$dir/a.out" 2>&1 &
a=$!; pids+=("$a")
read -r ms peak < <(watch_held $hub_http "$hub_token" "$hub")
echo "fresh hub from a till: $products documents in $ms ms; hub peak RSS $peak MB, till A RSS $(rss_mb "$a") MB"

# (2) A new till B of the store: every document and product row from the hub.
"$fusion" node serve --data-dir "$dir/b" --listen $b_http --store-id s1 --hub "$endpoint" > "$dir/b.out" 2>&1 &
b=$!; pids+=("$b")
wait_http $b_http $b
b_token=$(cat "$dir/b/admin.token")
read -r ms peak < <(watch_held $b_http "$b_token" "$b")
t0=$(now_ms)
until [ "$(curl -sf -H "Authorization: Bearer $b_token" "http://$b_http/products?limit=1&offset=$((products - 1))")" != "[]" ]; do sleep 0.1; done
echo "new till from the hub: $products documents in $ms ms (+$(( $(now_ms) - t0 )) ms to the last product row); till B peak RSS $peak MB, hub RSS $(rss_mb "$hub") MB"

# (3) Prices edited at the hub reach till B (all three still connected).
python3 docs/bench/price-edit.py $hub_http "$hub_token" $b_http "$b_token" "$products" "${EDITS:-200}"

# (4) With TILLS=N, N more new tills join at once (the hub serving all of them): the hub's
# memory with a fleet.
more=${TILLS:-0}
if [ "$more" -gt 0 ]; then
    tpids=()
    for n in $(seq 1 "$more"); do
        id=$("$fusion" node id --data-dir "$dir/t$n")
        "$fusion" hub enroll "$id" --store s1 --url "http://$hub_http" --data-dir "$dir/hub" > /dev/null
    done
    t0=$(now_ms)
    for n in $(seq 1 "$more"); do
        "$fusion" node serve --data-dir "$dir/t$n" --listen 127.0.0.1:$((18400 + n)) --store-id s1 \
            --hub "$endpoint" > "$dir/t$n.out" 2>&1 &
        tpids+=($!); pids+=($!)
    done
    for n in $(seq 1 "$more"); do wait_http 127.0.0.1:$((18400 + n)) "${tpids[$((n - 1))]}"; done
    hub_peak=0 till_peak=0
    while :; do
        synced=0
        for n in $(seq 1 "$more"); do
            [ "$(held 127.0.0.1:$((18400 + n)) "$(cat "$dir/t$n/admin.token")")" -ge "$products" ] && synced=$((synced + 1))
            r=$(rss_mb "${tpids[$((n - 1))]}"); [ "$r" -gt "$till_peak" ] && till_peak=$r
        done
        r=$(rss_mb "$hub"); [ "$r" -gt "$hub_peak" ] && hub_peak=$r
        [ "$synced" -eq "$more" ] && break
        sleep 0.5
    done
    echo "$more more tills at once: each holds $products documents after $(( $(now_ms) - t0 )) ms; hub peak RSS $hub_peak MB, the biggest till's peak $till_peak MB"
    sleep 5
    echo "hub with $((more + 2)) tills connected, idle: RSS $(rss_mb "$hub") MB"
fi
