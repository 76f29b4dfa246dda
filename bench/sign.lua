-- wrk script: POST /keys/$KEY/sign with algorithm $ALG over one fixed
-- SHA-256 digest, with the bearer token from $TOKEN (step 15). Non-200
-- answers are counted.
local token = os.getenv("TOKEN")
local key = os.getenv("KEY")
local alg = os.getenv("ALG")
local threads = {}

-- SHA-256("coffer"), base64url: any 32 bytes would do.
local digest = "SO1freZX-qdhUTkSULGJQSch1GOqyx-tcQjlwbgSC1k"

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  failures = 0
  body = '{"alg":"' .. alg .. '","value":"' .. digest .. '"}'
  path = "/keys/" .. key .. "/sign?api-version=7.5"
  headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
end

function request()
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
