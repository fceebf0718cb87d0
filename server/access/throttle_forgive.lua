-- Take back one counted attempt (server/access/throttle.py): DECR only while the
-- window's key exists, so a window that ended is not brought back without a TTL.
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
