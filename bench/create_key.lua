-- wrk script: POST /keys/<unique name>/create with the body in $BODY
-- ({"kty":"RSA","key_size":2048} or {"kty":"EC","crv":"P-256"}), a new key
-- per request, with the bearer token from $TOKEN (step 15). Non-200 answers
-- are counted.
local token = os.getenv("TOKEN")
local prefix = os.getenv("PREFIX") or "k"
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  failures = 0
  body = os.getenv("BODY")
  headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
end

function request()
  counter = counter + 1
  local path = "/keys/" .. prefix .. tid .. "-" .. counter .. "/create?api-version=7.5"
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total_failures = 0
  for _, t in ipairs(threads) do
    total_failures = total_failures + t:get("failures")
  end
  io.write(string.format("non-200 responses: %d\n", total_failures))
end
