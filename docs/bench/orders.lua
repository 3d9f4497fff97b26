-- wrk script: durable POST /orders with three lines (the same body as the Rust bench).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("FUSION_TOKEN")
wrk.body = '{"customerId":"bench","items":[{"sku":"B0","quantity":1,"price":1.25},{"sku":"B1","quantity":1,"price":2.5},{"sku":"B2","quantity":1,"price":0.1}]}'

function response(status, headers, body)
  if status ~= 201 then
    io.stderr:write("unexpected status " .. status .. "\n")
  end
end
