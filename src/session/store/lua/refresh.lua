local presented, nexth, nexp, now_ms = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local now = math.floor(now_ms / 1000)
local sid = redis.call('GET', p .. ':refresh:' .. presented)
if not sid then return {'invalid'} end
local key = p .. ':session:' .. sid
local f = redis.call('HMGET', key, 'sub', 'current', 'previous', 'rotated_ms', 'expires', 'claims')
local sub = f[1]
if not sub then return {'invalid'} end
if f[2] ~= presented then
  local grace = tonumber(ARGV[8])
  if grace > 0 and f[3] == presented and now_ms - tonumber(f[4]) <= grace then return {'concurrent'} end
  local aexp = drop(sid)
  revoke(KEYS[1], KEYS[2], 'sid', sid, aexp, channel)
  return {'reused', sid, aexp}
end
if tonumber(f[5]) < now then return {'expired'} end
redis.call('HSET', key, 'current', nexth, 'previous', presented, 'rotated_ms', ARGV[6],
  'refreshed', now, 'expires', nexp, 'access_exp', ARGV[7])
redis.call('EXPIREAT', key, nexp)
redis.call('SET', p .. ':refresh:' .. nexth, sid)
redis.call('EXPIREAT', p .. ':refresh:' .. nexth, nexp)
extend(p .. ':sessions:' .. sub, nexp, now)
return {'rotated', sid, sub, f[6], redis.call('ZSCORE', KEYS[3], sub) or ''}
