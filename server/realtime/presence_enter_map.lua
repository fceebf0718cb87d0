-- Several sockets enter one project's presence on a Redis Cluster
-- (server/realtime/presence.py, RedisPresence._enter_sharded), atomically.
--
-- KEYS[1]      the project's presence map
-- ARGV         two per entry: connection id, entry
--
-- Returns the map, read whole (HGETALL) after every entry is in. The caller
-- added the entries to the instance's index before (that key lives in another
-- hash slot): no entry is ever in a map without being in the index.
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return redis.call('HGETALL', KEYS[1])
