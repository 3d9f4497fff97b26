#!/usr/bin/env bash
# A supermarket's catalog on one till (issue 20): N products imported with `fusion products
# import`, then the node stopped and started again RUNS times: the time from exec to a served
# GET /products/{id}, and the resident set idle (VmRSS of /proc/PID/status) after reading a
# page of products and after a full read of every product row.
# Needs a release build (cargo build --release -p fusion-cli), or FUSION_BIN=path to another.
# Usage: docs/bench/catalog.sh [PRODUCTS=100000] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
products=${1:-100000}
runs=${2:-3}
fusion=${FUSION_BIN:-${CARGO_TARGET_DIR:-target}/release/fusion}
dir=$(mktemp -d)
port=18282
url=http://127.0.0.1:$port
trap 'kill $node 2>/dev/null || true; rm -rf "$dir"' EXIT

start() {
    "$fusion" node serve --data-dir "$dir/node" --listen 127.0.0.1:$port > "$dir/out" 2>&1 &
    node=$!
}
rss_mb() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$node/status"; }
stop() { kill "$node"; wait "$node" 2>/dev/null || true; }

start
until [ -s "$dir/node/admin.token" ] && curl -sf "$url/health" > /dev/null; do sleep 0.05; done
export FUSION_TOKEN=$(cat "$dir/node/admin.token") FUSION_URL=$url
{
    echo "sku,name,price,currency,inventory,description"
    for i in $(seq 1 "$products"); do
        echo "SKU$i,Product number $i,$((i % 97 + 1)).25,USD,100,A product of the big catalog bench"
    done
} > "$dir/catalog.csv"
started=$(date +%s.%N)
"$fusion" products import "$dir/catalog.csv" > /dev/null
imported=$(date +%s.%N)
echo "imported $products products in $(echo "$imported - $started" | bc) s; RSS after $(rss_mb) MB"
id=$(curl -sf -H "Authorization: Bearer $FUSION_TOKEN" "$url/products?limit=1" | sed 's/.*"id":"\([^"]*\)".*/\1/')
stop
echo "store file: $(du -m "$dir/node/fusion.redb" | cut -f1) MB"
for run in $(seq 1 "$runs"); do
    t0=$(date +%s%N)
    start
    until curl -sf -o /dev/null -H "Authorization: Bearer $FUSION_TOKEN" "$url/products/$id"; do sleep 0.005; done
    t1=$(date +%s%N)
    curl -sf -o /dev/null -H "Authorization: Bearer $FUSION_TOKEN" "$url/products?limit=50"
    sleep 1
    idle=$(rss_mb)
    # Every product row, page after page (reads never touch the documents).
    offset=0
    while [ "$(curl -sf -H "Authorization: Bearer $FUSION_TOKEN" "$url/products?limit=200&offset=$offset")" != "[]" ]; do
        offset=$((offset + 200))
    done
    echo "run $run: start to serving $(( (t1 - t0) / 1000000 )) ms; RSS idle $idle MB, after reading every row $(rss_mb) MB"
    stop
done
