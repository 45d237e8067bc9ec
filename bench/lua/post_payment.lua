-- POST /payments: a valid card payment for a random user in [1, USERS], a random amount.
-- Usage: wrk ... -s post_payment.lua URL -- USERS
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  users = tonumber(args[1])
  headers = { ["Content-Type"] = "application/json" }
  for name, value in pairs(wrk.headers) do  -- the -H headers (the API key): wrk.format drops them otherwise
    headers[name] = value
  end
  math.randomseed(os.time() * 1000 + wrk.thread:get("id"))
end

function request()
  local body = string.format(
    '{"user_id": %d, "amount": "%d.%02d", "currency": "INR", "payment_method": "Credit Card",'
      .. ' "card_no": "4111111111111111", "card_expiry": "2099-12-01", "card_cvc": "123",'
      .. ' "description": "benchmark order"}',
    math.random(1, users), math.random(1, 50000), math.random(0, 99))
  return wrk.format("POST", "/payments", headers, body)
end
