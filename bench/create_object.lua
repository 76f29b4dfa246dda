-- wrk script: POST /<collection>/<unique name>/create with the body in $BODY,
-- a new object per request, with the bearer token from $TOKEN: keys (step 15;
-- $COLLECTION "keys", {"kty":"RSA","key_size":2048}, answered 200) or
-- certificates (step 16; "certificates", a policy, answered 202 once the
-- version is written). Answers other than $STATUS are counted.
local token = os.getenv("TOKEN")
local prefix = os.getenv("PREFIX") or "k"
local collection = os.getenv("COLLECTION") or "keys"
local expected = tonumber(os.getenv("STATUS") or "200")
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
  local path = "/" .. collection .. "/" .. prefix .. tid .. "-" .. counter ..
    "/create?api-version=7.5"
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status ~= expected then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total_failures = 0
  for _, t in ipairs(threads) do
    total_failures = total_failures + t:get("failures")
  end
  io.write(string.format("unexpected responses: %d\n", total_failures))
end
