#!/usr/bin/env bash
# The same workloads as `cargo bench -p fusion-cli --bench throughput`, driven by wrk -t2 -c64
# (the tool FusionCommerce's numbers were taken with). Needs wrk (apt install wrk) and a release
# build (cargo build --release -p fusion-cli). Usage: docs/bench/wrk.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
target=${CARGO_TARGET_DIR:-target}
dir=$(mktemp -d)
port=18181
"$target/release/fusion" node serve --data-dir "$dir" --listen 127.0.0.1:$port > "$dir/out" 2>&1 &
node=$!
trap 'kill $node 2>/dev/null; rm -rf "$dir"' EXIT
until [ -s "$dir/admin.token" ] && curl -sf http://127.0.0.1:$port/health > /dev/null; do sleep 0.1; done
export FUSION_TOKEN=$(cat "$dir/admin.token")
url=http://127.0.0.1:$port
for i in $(seq 0 49); do
  curl -sf -o /dev/null -H "Authorization: Bearer $FUSION_TOKEN" "$url/products" \
    -d "{\"sku\":\"B$i\",\"name\":\"Bench product $i\",\"description\":\"a product used by the benchmark\",\"price\":1.25,\"currency\":\"USD\",\"inventory\":1000000000}"
done
id=$(curl -sf -H "Authorization: Bearer $FUSION_TOKEN" "$url/products?limit=1" | sed 's/.*"id":"\([^"]*\)".*/\1/')
echo "== POST /orders (3 lines, durable)"
wrk -t2 -c64 -d"${seconds}s" --latency -s docs/bench/orders.lua "$url/orders" | grep -E "Requests/sec|50%|99%|Non-2xx"
echo "== GET /products/{id}"
wrk -t2 -c64 -d"${seconds}s" --latency -H "Authorization: Bearer $FUSION_TOKEN" "$url/products/$id" | grep -E "Requests/sec|50%|99%|Non-2xx"
echo "== GET /products (page of 50)"
wrk -t2 -c64 -d"${seconds}s" --latency -H "Authorization: Bearer $FUSION_TOKEN" "$url/products?limit=50" | grep -E "Requests/sec|50%|99%|Non-2xx"
