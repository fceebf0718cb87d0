-- Several sockets enter presence (server/realtime/presence.py, RedisPresence.enter),
-- for one or several projects, in one atomic call.
--
-- KEYS[1]      this instance's index of its entries (what a reaper removes if it dies)
-- KEYS[2..]    the presence maps of the projects entered, each once
-- ARGV         four per entry: its map's position in KEYS, connection id, entry, index member
--
-- Returns each map of KEYS[2..] in order, read whole (HGETALL) after every entry is in.
-- The index first: should a command fail halfway, no entry is ever in a map without
-- being in the index (a dead instance's entries are always reaped).
local members = {}
for i = 1, #ARGV, 4 do
  members[#members + 1] = ARGV[i + 3]
end
redis.call('SADD', KEYS[1], unpack(members))
for i = 1, #ARGV, 4 do
  redis.call('HSET', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
end
local maps = {}
for k = 2, #KEYS do
  maps[k - 1] = redis.call('HGETALL', KEYS[k])
end
return maps
