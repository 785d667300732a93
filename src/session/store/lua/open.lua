local sid, sub, hash, exp = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now = math.floor(tonumber(ARGV[7]) / 1000)
local key = p .. ':session:' .. sid
local subj = p .. ':sessions:' .. sub
redis.call('HSET', key, 'sub', sub, 'created', now, 'refreshed', now, 'expires', exp,
  'current', hash, 'rotated_ms', ARGV[7], 'claims', ARGV[8], 'access_exp', ARGV[9])
redis.call('EXPIREAT', key, exp)
redis.call('SET', p .. ':refresh:' .. hash, sid)
redis.call('EXPIREAT', p .. ':refresh:' .. hash, exp)
redis.call('ZADD', subj, ARGV[7], sid)
extend(subj, exp, now)
for _, s in ipairs(redis.call('ZRANGE', subj, 0, -1)) do
  if redis.call('EXISTS', p .. ':session:' .. s) == 0 then redis.call('ZREM', subj, s) end
end
local out = {redis.call('ZSCORE', KEYS[3], sub) or ''}
local cap = tonumber(ARGV[10])
local n = redis.call('ZCARD', subj)
if cap > 0 and n > cap then
  for _, s in ipairs(redis.call('ZRANGE', subj, 0, n - cap - 1)) do
    local aexp = drop(s)
    if aexp then
      revoke(KEYS[1], KEYS[2], 'sid', s, aexp, channel)
      table.insert(out, s)
      table.insert(out, aexp)
    end
  end
end
return out
