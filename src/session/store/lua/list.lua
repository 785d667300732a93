local out = {}
for _, s in ipairs(redis.call('ZRANGE', p .. ':sessions:' .. ARGV[3], 0, -1)) do
  local f = redis.call('HMGET', p .. ':session:' .. s, 'created', 'refreshed', 'expires')
  if f[1] then
    table.insert(out, s); table.insert(out, f[1]); table.insert(out, f[2]); table.insert(out, f[3])
  end
end
return out
