local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], 'GT', ARGV[3], ARGV[2])
local msg = {seq = seq, kind = ARGV[1], id = ARGV[2]}
if ARGV[1] == 'sub' then msg.before = tonumber(ARGV[3]) else msg.exp = tonumber(ARGV[3]) end
redis.call('PUBLISH', ARGV[4], cjson.encode(msg))
return seq
