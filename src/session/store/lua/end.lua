local sid, min_exp = ARGV[3], tonumber(ARGV[4])
local aexp = drop(sid)
local existed = 0
local exp = min_exp
if aexp then
  existed = 1
  if tonumber(aexp) > exp then exp = tonumber(aexp) end
end
if existed == 0 and min_exp <= 0 then return {0, ''} end
revoke(KEYS[1], KEYS[2], 'sid', sid, exp, channel)
return {existed, tostring(exp)}
