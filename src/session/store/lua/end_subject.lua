local sub = ARGV[3]
local n = 0
for _, s in ipairs(redis.call('ZRANGE', p .. ':sessions:' .. sub, 0, -1)) do
  if drop(s) then n = n + 1 end
end
redis.call('DEL', p .. ':sessions:' .. sub)
revoke(KEYS[3], KEYS[2], 'sub', sub, ARGV[4], channel)
return {n}
