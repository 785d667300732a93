-- The head of every state-changing script (see redis_client::guarded_script).
-- Its last two arguments are a done key, unique to this call, and a
-- deadline in unix ms.
local tokengate_done = ARGV[#ARGV - 1]
local tokengate_deadline = tonumber(ARGV[#ARGV])
-- A resend of this very call (a cluster client retrying after a lost reply,
-- perhaps to a new master that has the first run) gets the first run's
-- answer instead of running again: a refresh run twice would see its own
-- rotation as a reuse.
local tokengate_prior = redis.call('GET', tokengate_done)
if tokengate_prior == '' then
  return redis.error_reply('an earlier run of this call failed part way')
elseif tokengate_prior then
  return cmsgpack.unpack(tokengate_prior)
end
local tokengate_clock = redis.call('TIME')
local tokengate_now = tonumber(tokengate_clock[1]) * 1000 + math.floor(tonumber(tokengate_clock[2]) / 1000)
-- Past the deadline the caller has given up waiting (and answered 503),
-- so the script must change nothing. Redis's clock comes back, so the
-- caller can log how late (or how far its clock is from Redis's, if every
-- script is late).
if tokengate_now > tokengate_deadline then
  return {'late', tokengate_now - tokengate_deadline}
end
-- Claims the done key before anything else is written. On a cluster this
-- is also the probe that keeps a half-run script from happening: while the
-- slot is migrating away, its old master refuses to create a key, and this
-- is the first one, so the script stops here having changed nothing (the
-- client is answered 503 and retries), rather than at a later write.
redis.call('SET', tokengate_done, '', 'PX', math.max(tokengate_deadline - tokengate_now, 0) + 10000)
