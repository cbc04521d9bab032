-- wrk script for bench/run.py: Afterpay refund requests, one JSON line of results at the end.
--
-- wrk -t1 -c32 -d10s -s bench/refund.lua http://127.0.0.1:PORT -- MODE PAYMENTS FIRST_ORDER AUTH RUN KEYS
--   MODE   new      valid refunds with fresh requestId/merchantReference, orders cycled
--          replay   KEYS fixed (requestId, merchantReference) pairs with identical bodies: after
--                   the first round every request is an idempotent replay
--          missing  valid refunds on order ids that do not exist (404)
--   PAYMENTS / FIRST_ORDER  the seeded orders are FIRST_ORDER .. FIRST_ORDER+PAYMENTS-1
--   AUTH   the Authorization header value
--   RUN    a tag that keeps references unique across phases and runs

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "new"
  payments = tonumber(args[2] or "1000")
  first = tonumber(args[3] or "800000000000")
  run = (args[5] or "run") .. "-" .. tid
  keys = tonumber(args[6] or "1000")
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json"
  wrk.headers["User-Agent"] = "refund-bench/1.0 (wrk; Lua)"
  wrk.headers["Authorization"] = args[4] or ""
end

local function refund_body(request_id, reference)
  return '{"requestId":"' .. request_id .. '","amount":{"amount":"1.00","currency":"AUD"},'
    .. '"merchantReference":"' .. reference .. '"}'
end

function request()
  counter = counter + 1
  local order, request_id, reference
  if mode == "replay" then
    local key = counter % keys
    order = string.format("%.0f", first + key % payments)
    -- the same pairs in every thread and run: replays of what the warm-up stored
    request_id = "replay-" .. key
    reference = "replay-ref-" .. key
  elseif mode == "missing" then
    order = string.format("%.0f", first + payments + 1000000 + counter % 1000)
    request_id = run .. "-" .. counter
    reference = "ref-" .. run .. "-" .. counter
  else
    order = string.format("%.0f", first + counter % payments)
    request_id = run .. "-" .. counter
    reference = "ref-" .. run .. "-" .. counter
  end
  return wrk.format(nil, "/v2/payments/" .. order .. "/refund", nil,
                    refund_body(request_id, reference))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,'
      .. '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
