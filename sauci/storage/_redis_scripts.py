"""The Lua scripts RedisStore runs on the server, each one atomic: claiming a
build; changing one, and moving it between the status indexes and the queue;
changing one only while a given worker owns it; appending to a step's log and
reading it.

They follow the key layout and encoding of :mod:`sauci.storage.redis`: every
field of a build's hash is JSON, so a status reads ``'"running"'``.
"""

__all__ = ["APPEND", "CLAIM", "OWNED", "READ", "UPDATE"]

# ARGV: prefix, worker, now[, build id]. With a build id: that build, only if queued.
CLAIM = """
local p = ARGV[1]
local id
if ARGV[4] then
  id = ARGV[4]
  if redis.call('ZSCORE', p .. ':queue', id) == false then return false end
else
  local ids = redis.call('ZRANGE', p .. ':queue', 0, 0)
  if #ids == 0 then return false end
  id = ids[1]
end
local key = p .. ':build:' .. id
redis.call('ZREM', p .. ':queue', id)
redis.call('ZREM', p .. ':status:queued', id)
redis.call('ZADD', p .. ':status:running', id, id)
redis.call('HSET', key, 'status', '"running"', 'claimed_by', ARGV[2], 'started_at', ARGV[3],
  'heartbeat_at', ARGV[3], 'reason', 'null')
return redis.call('HGETALL', key)
"""

# The end of OWNED and UPDATE, after the fields are set (``old`` is the status
# before): move the build between the status indexes, and into the queue or
# out of it; return the build's new fields.
_REINDEX = """
local new = cjson.decode(redis.call('HGET', key, 'status'))
if new ~= old then
  redis.call('ZREM', p .. ':status:' .. old, id)
  redis.call('ZADD', p .. ':status:' .. new, id, id)
end
if new == 'queued' then
  local prio = tonumber(redis.call('HGET', key, 'priority'))
  redis.call('ZADD', p .. ':queue', -prio * 4294967296 + tonumber(id), id)
else
  redis.call('ZREM', p .. ':queue', id)
end
return redis.call('HGETALL', key)
"""

# Compare and set on the owner of a running build. ARGV: prefix, id, worker,
# then the fields to set. -1: no such build; 0: not running or not the
# worker's (nothing changed); else the build's new fields.
OWNED = (
    """
local p, id = ARGV[1], ARGV[2]
local key = p .. ':build:' .. id
if redis.call('EXISTS', key) == 0 then return -1 end
if redis.call('HGET', key, 'status') ~= '"running"'
    or redis.call('HGET', key, 'claimed_by') ~= ARGV[3] then
  return 0
end
local old = 'running'
for i = 4, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
"""
    + _REINDEX
)

# ARGV: prefix, id, then the fields to set. False: no such build; else the
# build's new fields.
UPDATE = (
    """
local p, id = ARGV[1], ARGV[2]
local key = p .. ':build:' .. id
if redis.call('EXISTS', key) == 0 then return false end
local old = cjson.decode(redis.call('HGET', key, 'status'))
for i = 3, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
"""
    + _REINDEX
)

# KEYS: build, list, index, size. Returns the new size, or false without a build.
APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local size = tonumber(redis.call('GET', KEYS[4]) or '0')
if string.len(ARGV[1]) == 0 then return size end
local seq = redis.call('RPUSH', KEYS[2], ARGV[1]) - 1
redis.call('ZADD', KEYS[3], size, seq)
return redis.call('INCRBY', KEYS[4], string.len(ARGV[1]))
"""

# KEYS: build, list of JSON [step, row]. ARGV: step, rows (JSON [step, row]) ...
# The step's rows are replaced by these (a write repeated = a write once);
# returns false without a build.
REPLACE_ROWS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local keep = {}
for _, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  if cjson.decode(v)[1] ~= ARGV[1] then keep[#keep + 1] = v end
end
for i = 2, #ARGV do keep[#keep + 1] = ARGV[i] end
redis.call('DEL', KEYS[2])
for i = 1, #keep, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(keep, i, math.min(i + 999, #keep)))
end
return true
"""

# KEYS: list, index. ARGV: start, end (or -1). Returns {first chunk's offset, chunks...}.
READ = """
local first = redis.call('ZREVRANGEBYSCORE', KEYS[2], ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #first == 0 then return {} end
local last = -1
if tonumber(ARGV[2]) >= 0 then
  local l = redis.call('ZREVRANGEBYSCORE', KEYS[2], '(' .. ARGV[2], '-inf', 'LIMIT', 0, 1)
  last = tonumber(l[1])
end
local out = redis.call('LRANGE', KEYS[1], tonumber(first[1]), last)
table.insert(out, 1, first[2])
return out
"""
