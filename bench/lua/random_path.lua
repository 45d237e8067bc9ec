-- GET PREFIX..N..SUFFIX with N uniformly random in [LOW, HIGH], a new N per request.
-- Usage: wrk ... -s random_path.lua URL -- PREFIX LOW HIGH [SUFFIX]
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  prefix, low, high, suffix = args[1], tonumber(args[2]), tonumber(args[3]), args[4] or ""
  math.randomseed(os.time() * 1000 + wrk.thread:get("id"))
end

function request()
  return wrk.format("GET", prefix .. math.random(low, high) .. suffix)
end
