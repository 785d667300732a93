-- KEYS[1] the set, KEYS[2] the seq key, KEYS[3] the once key, KEYS[4] the
-- guard's done key; ARGV[1] kind, ARGV[2] id, ARGV[3] score, ARGV[4] channel,
-- ARGV[5] once TTL (s), ARGV[6] the deadline (both read by the guard, which
-- answers {'late'} past the deadline).
-- Returns the new seq, or -1 when the once key existed: the same logout
-- token was acted on already, and nothing changes.
if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[5]) then
  return -1
end
return revoke(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
