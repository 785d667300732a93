-- The last argument is a deadline in unix ms: past it, the caller has
-- given up waiting (and answered 503), so the script must change nothing.
local deadline_ms = tonumber(ARGV[#ARGV])
local clock = redis.call('TIME')
local redis_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if redis_ms > deadline_ms then
  -- Redis's clock comes back, so the caller can log how late (or how far
  -- its clock is from Redis's, if every script is late).
  return {'late', redis_ms - deadline_ms}
end
