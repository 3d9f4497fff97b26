#!/usr/bin/env python3
"""A price edited at the hub until a till serves it: EDITS edits of random products, each timed
from the hub's PATCH until the till's GET /products/{id} answers the new price (polled without
pause over one keep-alive connection). Prints the median, p99 and max in ms.

Usage: price-edit.py HUB_ADDR HUB_TOKEN TILL_ADDR TILL_TOKEN PRODUCTS [EDITS=200]"""
import http.client
import json
import random
import sys
import time

hub_addr, hub_token, till_addr, till_token, products = sys.argv[1:6]
edits = int(sys.argv[6]) if len(sys.argv) > 6 else 200
products = int(products)
hub = http.client.HTTPConnection(hub_addr)
till = http.client.HTTPConnection(till_addr)


def call(conn, token, method, path, body=None):
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


rng = random.Random(20)
times = []
for n in range(edits):
    offset = rng.randrange(products)
    status, page = call(till, till_token, "GET", f"/products?limit=1&offset={offset}")
    assert status == 200 and page, (status, page)
    product = page[0]
    price = f"{1000 + n}.{n % 100:02d}"
    started = time.perf_counter()
    status, body = call(hub, hub_token, "PATCH", f"/products/{product['id']}", {"price": price})
    assert status == 200, (status, body)
    while True:
        status, seen = call(till, till_token, "GET", f"/products/{product['id']}")
        if status == 200 and f"{float(seen['price']):.2f}" == price:
            break
        if time.perf_counter() - started > 10:
            sys.exit(f"edit {n} not at the till after 10 s: {seen}")
    times.append((time.perf_counter() - started) * 1000)
times.sort()
print(
    f"price edit at the hub to the till: {edits} edits, median {times[len(times) // 2]:.1f} ms, "
    f"p99 {times[int(len(times) * 0.99) - 1]:.1f} ms, max {times[-1]:.1f} ms"
)
