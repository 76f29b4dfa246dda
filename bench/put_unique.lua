-- wrk script: PUT a new secret per request (names unique per thread), with
-- the bearer token from $TOKEN. Optional $LIMIT stops each thread after that
-- many responses (used to populate a vault). Non-2xx answers are counted.
local token = os.getenv("TOKEN")
local prefix = os.getenv("PREFIX") or "b"
local limit = tonumber(os.getenv("LIMIT") or "0")
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  responses = 0
  failures = 0
end

function request()
  counter = counter + 1
  local path = "/secrets/" .. prefix .. tid .. "-" .. counter .. "?api-version=7.5"
  return wrk.format("PUT", path,
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" },
    '{"value":"benchmark-value-' .. counter .. '"}')
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 then
    failures = failures + 1
  end
  if limit > 0 and responses >= limit then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total_failures = 0
  for _, t in ipairs(threads) do
    total_failures = total_failures + t:get("failures")
  end
  io.write(string.format("non-200 responses: %d\n", total_failures))
end
