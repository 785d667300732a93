-- The head of every state-changing script (see redis_client::guarded_script).
-- Its last key is a done key, unique to this call (declared, so that Redis
-- Cluster refuses the script with TRYAGAIN or ASK while the slot is moving
-- instead of running it with keys missing); its last argument a deadline
-- in unix ms.
local tokengate_done = KEYS[#KEYS]
local tokengate_deadline = tonumber(ARGV[#ARGV])
-- A resend of this very call (a cluster client retrying after a lost reply,
-- perhaps to a new master that has the first run) gets the first run's
-- answer instead of running again: a refresh run twice would see its own
-- rotation as a reuse.
local tokengate_prior = redis.call('GET', tokengate_done)
if tokengate_prior == '' then
  return redis.error_reply('an earlier run of this call failed part way')
elseif tokengate_prior then
  -- A write, so that a WAIT after the resend covers the first run's
  -- effects on this node (they may have arrived by replication).
  redis.call('SET', tokengate_done, tokengate_prior, 'KEEPTTL')
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
-- Claims the done key before anything else is written (a body that fails
-- part way leaves it empty, and a resend is then refused, not re-run).
redis.call('SET', tokengate_done, '', 'PX', math.max(tokengate_deadline - tokengate_now, 0) + 10000)
