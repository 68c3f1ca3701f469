"""The Lua scripts of the Redis store, one per atomic change (data only).

Each script starts with the same prelude: read the server's clock with ``TIME``,
create the account's state if it is missing (a fresh or restarted Redis), drop the
leases and queue places whose time ran out, and tell waiters when that freed
anything. Each returns a list whose first item is the state's *epoch*, so a
process notices at its next call that the state was lost and re-registers its
leases.
"""

from __future__ import annotations

__all__ = ["SCRIPTS"]

# KEYS: 1 state, 2 leases, 3 lease_slots, 4 queue, 5 queue_alive, 6 queue_slots
# ARGV: 1 epoch candidate, 2 initial window, 3 recount grace (ms), 4 channel, then per script.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function state()
  local epoch = redis.call('HGET', KEYS[1], 'epoch')
  if epoch then return epoch end
  local info = redis.call('INFO', 'server')
  local up = tonumber(string.match(info, 'uptime_in_seconds:(%d+)')) or 0
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'window', ARGV[2], 'limited', 0,
    'paused_until', 0, 'recount_until', now - up * 1000 + tonumber(ARGV[3]), 'seq', 0)
  return ARGV[1]
end
local function purge()
  local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
  if #dead > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    redis.call('HDEL', KEYS[3], unpack(dead))
  end
  local gone = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)
  if #gone > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
    redis.call('ZREM', KEYS[4], unpack(gone))
    redis.call('HDEL', KEYS[6], unpack(gone))
  end
  if #dead + #gone > 0 then redis.call('PUBLISH', ARGV[4], 'freed') end
end
local function held()
  local total = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[3])) do total = total + tonumber(v) end
  return total
end
local function capacity(maxcap)
  local w = tonumber(redis.call('HGET', KEYS[1], 'window'))
  return math.max(1, math.min(maxcap, math.floor(w + 1e-9)))
end
local function num(field)
  return tonumber(redis.call('HGET', KEYS[1], field) or '0')
end
"""

# ARGV 5 lease id (also the queue place), 6 slots, 7 ttl ms, 8 queued 0/1,
# 9 enqueue 0/1, 10 place ttl ms, 11 max capacity.
# Returns {epoch, granted 0/1, queued 0/1, wait ms}.
_ACQUIRE = (
    _PRELUDE
    + """
local epoch = state()
purge()
local id, slots = ARGV[5], tonumber(ARGV[6])
local queued = ARGV[8] == '1' and redis.call('ZSCORE', KEYS[4], id) ~= false
if queued then redis.call('ZADD', KEYS[5], now + tonumber(ARGV[10]), id) end
local wait = math.max(0, num('paused_until') - now, num('recount_until') - now)
local h = held()
local cap = capacity(tonumber(ARGV[11]))
local ahead = 0
for _, place in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  if place == id then break end
  ahead = ahead + tonumber(redis.call('HGET', KEYS[6], place) or '0')
end
if wait == 0 and ((h == 0 and ahead == 0) or h + ahead + slots <= cap) then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[7]), id)
  redis.call('HSET', KEYS[3], id, slots)
  if queued then
    redis.call('ZREM', KEYS[4], id)
    redis.call('ZREM', KEYS[5], id)
    redis.call('HDEL', KEYS[6], id)
    redis.call('PUBLISH', ARGV[4], 'freed')
  end
  return {epoch, 1, 0, 0}
end
if not queued and ARGV[9] == '1' then
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('ZADD', KEYS[4], seq, id)
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[10]), id)
  redis.call('HSET', KEYS[6], id, slots)
  queued = true
end
return {epoch, 0, queued and 1 or 0, wait}
"""
)

# ARGV 5 place. Returns {epoch}.
_LEAVE = (
    _PRELUDE
    + """
local epoch = state()
if redis.call('ZREM', KEYS[4], ARGV[5]) > 0 then
  redis.call('ZREM', KEYS[5], ARGV[5])
  redis.call('HDEL', KEYS[6], ARGV[5])
  redis.call('PUBLISH', ARGV[4], 'freed')
end
return {epoch}
"""
)

# ARGV 5.. triples (lease id, slots, ttl ms). Leases the store lost are re-registered.
# Returns {epoch, re-registered count}.
_RENEW = (
    _PRELUDE
    + """
local epoch = state()
purge()
local again = 0
for i = 5, #ARGV, 3 do
  local id = ARGV[i]
  if redis.call('ZSCORE', KEYS[2], id) == false then
    again = again + 1
    redis.call('HSET', KEYS[3], id, ARGV[i + 1])
  end
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[i + 2]), id)
end
return {epoch, again}
"""
)

# ARGV 5.. lease ids. Returns {epoch}.
_RELEASE = (
    _PRELUDE
    + """
local epoch = state()
local n = 0
for i = 5, #ARGV do
  n = n + redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('HDEL', KEYS[3], ARGV[i])
end
purge()
if n > 0 then redis.call('PUBLISH', ARGV[4], 'freed') end
return {epoch}
"""
)

# ARGV 5 refused lease id or '', 6 decrease. Returns {epoch}.
_LIMITED = (
    _PRELUDE
    + """
local epoch = state()
if ARGV[5] ~= '' then
  redis.call('ZREM', KEYS[2], ARGV[5])
  redis.call('HDEL', KEYS[3], ARGV[5])
end
purge()
local w = math.floor(num('window') + 1e-9)
local others = held()
local floor = math.max(others, math.floor(num('window') * tonumber(ARGV[6])))
local new = math.max(1, math.min(w, floor))
redis.call('HSET', KEYS[1], 'window', new, 'limited', 1)
redis.call('PUBLISH', ARGV[4], 'freed')
return {epoch}
"""
)

# ARGV 5 increase, 6 max capacity. Returns {epoch}.
_ACCEPTED = (
    _PRELUDE
    + """
local epoch = state()
local w = num('window')
local maxcap = tonumber(ARGV[6])
local before = capacity(maxcap)
local step = 1
if num('limited') == 1 then step = tonumber(ARGV[5]) / math.max(w, 1) end
w = math.min(maxcap, w + step)
redis.call('HSET', KEYS[1], 'window', string.format('%.6f', w))
if capacity(maxcap) > before then redis.call('PUBLISH', ARGV[4], 'freed') end
return {epoch}
"""
)

# ARGV 5 window. Returns {epoch}.
_SET_WINDOW = (
    _PRELUDE
    + """
local epoch = state()
redis.call('HSET', KEYS[1], 'window', ARGV[5])
redis.call('PUBLISH', ARGV[4], 'freed')
return {epoch}
"""
)

# ARGV 5 pause ms. Returns {epoch}.
_PAUSE = (
    _PRELUDE
    + """
local epoch = state()
local until_ = now + tonumber(ARGV[5])
if until_ > num('paused_until') then redis.call('HSET', KEYS[1], 'paused_until', until_) end
return {epoch}
"""
)

# ARGV 5 max capacity. Returns {epoch, held, capacity, paused ms, queued}.
_STATUS = (
    _PRELUDE
    + """
local epoch = state()
purge()
return {epoch, held(), capacity(tonumber(ARGV[5])),
  math.max(0, num('paused_until') - now), redis.call('ZCARD', KEYS[4])}
"""
)

# KEYS 1 owner key. ARGV 1 holder. Deletes the claim only if still the holder's.
_UNCLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


#: Every script by name.
SCRIPTS: dict[str, str] = {
    "acquire": _ACQUIRE,
    "leave": _LEAVE,
    "renew": _RENEW,
    "release": _RELEASE,
    "limited": _LIMITED,
    "accepted": _ACCEPTED,
    "set_window": _SET_WINDOW,
    "pause": _PAUSE,
    "status": _STATUS,
    "unclaim": _UNCLAIM,
}
