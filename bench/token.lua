-- wrk script: client-credentials token requests with the credentials from
-- $AZURE_CLIENT_ID / $AZURE_CLIENT_SECRET for scope $SCOPE. Non-200 answers
-- are counted.
local body = "grant_type=client_credentials&client_id=" .. os.getenv("AZURE_CLIENT_ID") ..
  "&client_secret=" .. os.getenv("AZURE_CLIENT_SECRET") ..
  "&scope=" .. os.getenv("SCOPE"):gsub(":", "%%3A"):gsub("/", "%%2F")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  failures = 0
end

function request()
  return wrk.format("POST", nil,
    { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + t:get("failures")
  end
  io.write(string.format("non-200 responses: %d\n", total))
end
