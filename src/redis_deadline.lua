-- The last argument is a deadline in unix ms: past it, the caller has
-- given up waiting (and answered 503), so the script must change nothing.
local deadline_ms = tonumber(ARGV[#ARGV])
local clock = redis.call('TIME')
if tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) > deadline_ms then
  return {'late'}
end
