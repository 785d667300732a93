local p = ARGV[1]
local channel = ARGV[2]
local function extend(key, exp, now)
  local ttl = redis.call('TTL', key)
  if ttl < 0 or now + ttl < tonumber(exp) then redis.call('EXPIREAT', key, exp) end
end
local function drop(sid)
  local key = p .. ':session:' .. sid
  local f = redis.call('HMGET', key, 'sub', 'current', 'access_exp')
  if not f[1] then return nil end
  redis.call('DEL', p .. ':refresh:' .. f[2], key)
  redis.call('ZREM', p .. ':sessions:' .. f[1], sid)
  return f[3]
end
