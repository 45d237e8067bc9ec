-- PUT /payments/<id> {"status": "completed"} on distinct pending payments: thread t of T sends
-- FIRST+t, FIRST+t+T, FIRST+t+2T, ... so every request is a real pending -> completed transition.
-- Usage: wrk ... -t THREADS -s put_status.lua URL -- FIRST LAST THREADS
-- Prints "put_next FIRST_UNUSED_ID" and "put_overflow N" (ids past LAST, sent as no-op repeats).
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  first, last, stride = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
  offset = wrk.thread:get("id")
  sent, overflow = 0, 0
  headers = { ["Content-Type"] = "application/json" }
  for name, value in pairs(wrk.headers) do  -- the -H headers (the API key): wrk.format drops them otherwise
    headers[name] = value
  end
end

function request()
  local id = first + offset + stride * sent
  sent = sent + 1
  if id > last then
    overflow = overflow + 1
    id = last
  end
  return wrk.format("PUT", "/payments/" .. id, headers, '{"status": "completed"}')
end

function done(summary, latency, requests)
  local most, overflow_total = 0, 0
  for _, thread in ipairs(threads) do
    most = math.max(most, thread:get("sent"))
    overflow_total = overflow_total + thread:get("overflow")
  end
  local start = threads[1]:get("first")
  io.write(string.format("put_next %d\nput_overflow %d\n", start + #threads * most, overflow_total))
end
