-- wrk's script for the zero-downtime measurement: paced keep-alive clients that count every
-- answer by what it says. `wrk -s zero_downtime.lua URL -- PAUSE_MS MARKER`.
--
-- Each connection waits PAUSE_MS before each request (wrk's delay()), so the rate is about
-- connections * 1000 / (PAUSE_MS + latency). Answers are counted as `ok <body>` (a color's
-- 200: its body is the color), `injected` (a 5xx whose body carries MARKER: the application's
-- own error, injected on purpose) or `status <code>` (anything else: a 5xx or 4xx the gateway
-- produced). `done` prints one line, `ZERO-DOWNTIME {json}`: wrk's own figures (its socket
-- errors, its latency percentiles in microseconds) and the counts merged over its threads,
-- with the second (Unix time) of each answer that was neither ok nor injected.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  pause = tonumber(args[1]) or 0
  marker = args[2] or "injected-error"
  counts = {}
  failed_at = {}
end

function delay()
  return pause
end

function response(status, headers, body)
  local key
  if status >= 200 and status < 300 then
    key = "ok " .. (body or "")
  elseif status >= 500 and body ~= nil and string.find(body, marker, 1, true) then
    key = "injected"
  else
    key = "status " .. status
    local second = tostring(os.time())
    failed_at[second] = (failed_at[second] or 0) + 1
  end
  counts[key] = (counts[key] or 0) + 1
end

local function object(t)
  local parts = {}
  for k, v in pairs(t) do
    table.insert(parts, string.format("%q:%s", k, tostring(v)))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function merged(name)
  local all = {}
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get(name) or {}) do
      all[k] = (all[k] or 0) + v
    end
  end
  return all
end

function done(summary, latency, requests)
  local errors = summary.errors
  local percentiles = {}
  for _, p in ipairs({50, 90, 99, 99.9}) do
    percentiles[tostring(p)] = latency:percentile(p)
  end
  io.write("ZERO-DOWNTIME ", object({
    durationMicros = summary.duration,
    responses = summary.requests,
    connectErrors = errors.connect,
    readErrors = errors.read,
    writeErrors = errors.write,
    timeouts = errors.timeout,
    non2xx = errors.status,
    latencyMaxMicros = latency.max,
    latencyMeanMicros = latency.mean,
  }):sub(1, -2), ",\"latencyMicros\":", object(percentiles),
    ",\"counts\":", object(merged("counts")),
    ",\"failedAt\":", object(merged("failed_at")), "}\n")
end
