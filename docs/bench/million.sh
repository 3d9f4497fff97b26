#!/usr/bin/env bash
# A till with a very big catalog against a small store, back to back in one run (issue 20):
# the small store holds the 50 bench products of docs/bench/wrk.sh, the big one the same 50
# and N more imported with `fusion products import`. For each: the time from exec to a served
# GET /products/{id}, the resident set idle and after load, and wrk -t2 -c64 on
# GET /products/{id} and POST /orders (3 lines, durable) for SECONDS each, with their p99.
# Needs wrk and a release build (cargo build --release -p fusion-cli), or FUSION_BIN.
# With STORES=DIR the two stores are kept there and reused by the next run (the import of
# 1,000,000 products takes minutes).
# Usage: [STORES=DIR] docs/bench/million.sh [PRODUCTS=1000000] [SECONDS=10]
set -euo pipefail
cd "$(dirname "$0")/../.."
products=${1:-1000000}
seconds=${2:-10}
fusion=${FUSION_BIN:-${CARGO_TARGET_DIR:-target}/release/fusion}
dir=${STORES:-$(mktemp -d)}
mkdir -p "$dir"
port=18283
url=http://127.0.0.1:$port
node=
trap '[ -n "$node" ] && kill $node 2>/dev/null; wait 2>/dev/null; [ -n "${STORES:-}" ] || rm -rf "$dir"' EXIT

start() {
    "$fusion" node serve --data-dir "$dir/$1" --listen 127.0.0.1:$port > "$dir/$1.out" 2>&1 &
    node=$!
}
stop() { kill "$node"; wait "$node" 2>/dev/null || true; node=; }
rss_mb() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$node/status"; }
wait_ready() {
    until [ -s "$dir/$1/admin.token" ] && curl -sf "$url/health" > /dev/null; do
        kill -0 "$node" 2>/dev/null || { tail -5 "$dir/$1.out" >&2; exit 1; }
        sleep 0.05
    done
}
p99() { grep -E "^ +99%" | awk '{print $2}'; }
rate() { grep "Requests/sec" | awk '{printf "%d", $2}'; }

for store in small big; do
    [ -s "$dir/$store/admin.token" ] && continue
    start $store
    wait_ready $store
    token=$(cat "$dir/$store/admin.token")
    for i in $(seq 0 49); do
        curl -sf -o /dev/null -H "Authorization: Bearer $token" "$url/products" \
            -d "{\"sku\":\"B$i\",\"name\":\"Bench product $i\",\"description\":\"a product used by the benchmark\",\"price\":1.25,\"currency\":\"USD\",\"inventory\":1000000000}"
    done
    if [ $store = big ]; then
        {
            echo "sku,name,price,currency,inventory,description"
            for i in $(seq 1 "$products"); do
                echo "SKU$i,Product number $i,$((i % 97 + 1)).25,USD,100,A product of the big catalog bench"
            done
        } > "$dir/catalog.csv"
        t0=$(date +%s)
        FUSION_URL=$url FUSION_TOKEN=$token "$fusion" products import "$dir/catalog.csv" > /dev/null
        echo "big: imported $products products in $(( $(date +%s) - t0 )) s"
        rm "$dir/catalog.csv"
    fi
    stop
done

# The measured part: both stores, one after the other.
for store in small big; do
    token=$(cat "$dir/$store/admin.token")
    t0=$(date +%s%N)
    start $store
    id=
    until [ -n "$id" ]; do
        id=$(curl -sf -H "Authorization: Bearer $token" "$url/products?limit=1" 2>/dev/null | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' || true)
        sleep 0.005
    done
    until curl -sf -o /dev/null -H "Authorization: Bearer $token" "$url/products/$id"; do sleep 0.005; done
    served=$(( ($(date +%s%N) - t0) / 1000000 ))
    sleep 1
    idle=$(rss_mb)
    get=$(wrk -t2 -c64 -d"${seconds}s" --latency -H "Authorization: Bearer $token" "$url/products/$id")
    post=$(FUSION_TOKEN=$token wrk -t2 -c64 -d"${seconds}s" --latency -s docs/bench/orders.lua "$url/orders")
    echo "$store: $(du -m "$dir/$store/fusion.redb" | cut -f1) MB store; start to serving $served ms; RSS idle $idle MB, after load $(rss_mb) MB;" \
        "GET /products/{id} $(echo "$get" | rate)/s p99 $(echo "$get" | p99);" \
        "POST /orders $(echo "$post" | rate)/s p99 $(echo "$post" | p99)"
    stop
done
