local sub = ARGV[3]
local n = 0
for _, s in ipairs(redis.call('ZRANGE', p .. ':sessions:' .. sub, 0, -1)) do
  if drop(s) then n = n + 1 end
end
redis.call('DEL', p .. ':sessions:' .. sub)
-- Tokens issued after an earlier cut-off c carry iat c + 1 (so a login in
-- the same second is not born revoked): a new cut-off covers them too.
local cutoff = tonumber(ARGV[4])
local earlier = tonumber(redis.call('ZSCORE', KEYS[3], sub))
if earlier and earlier + 1 > cutoff then cutoff = earlier + 1 end
revoke(KEYS[3], KEYS[2], 'sub', sub, cutoff, channel)
return {n, cutoff}
