local function revoke(set, seq_key, kind, id, score, channel)
  local seq = redis.call('INCR', seq_key)
  redis.call('ZADD', set, 'GT', score, id)
  local msg = {seq = seq, kind = kind, id = id}
  if kind == 'sub' then msg.before = tonumber(score) else msg.exp = tonumber(score) end
  redis.call('PUBLISH', channel, cjson.encode(msg))
  return seq
end
