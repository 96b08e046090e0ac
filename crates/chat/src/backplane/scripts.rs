//! The Lua scripts that keep the room's names in Redis. Each runs atomically, so a claim, a
//! release, a heartbeat or the reaping of a dead server is done whole or not at all: nothing
//! half-written is ever left.
//!
//! Keys, under the prefix `P` = `bingfa:chat:ROOM`:
//! - `P:members`: a hash, the name's key (`name::key`) → `SEQ SID ID NAME` (join order, owning server, its
//!   connection id, the name as typed);
//! - `P:seq`: the join counter;
//! - `P:servers`: the set of servers that have members (or had);
//! - `P:alive:SID`: a server's heartbeat, expiring after the TTL unless renewed.

/// ARGV: prefix, key, sid, id, name. Returns every record, or nil when the name is held by
/// a live server. A record of this same server is stale (the local roster is the truth for its
/// own members) and is taken over.
pub(super) const CLAIM: &str = r#"
local p = ARGV[1]
local cur = redis.call('HGET', p .. ':members', ARGV[2])
if cur then
  local osid = string.match(cur, '^%d+ (%x+) ')
  if osid ~= ARGV[3] and redis.call('EXISTS', p .. ':alive:' .. osid) == 1 then
    return false
  end
end
local seq = redis.call('INCR', p .. ':seq')
redis.call('HSET', p .. ':members', ARGV[2], seq .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5])
return redis.call('HVALS', p .. ':members')
"#;

/// ARGV: prefix, key, sid, id. Removes the record only if it is still this member's.
pub(super) const RELEASE: &str = r#"
local p = ARGV[1]
local cur = redis.call('HGET', p .. ':members', ARGV[2])
if cur and string.find(cur, ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ', 1, true) then
  redis.call('HDEL', p .. ':members', ARGV[2])
end
return 0
"#;

/// ARGV: prefix, sid, ttl ms, then (key, "ID NAME") per local member. Renews the server's
/// heartbeat, claims again what a restarted Redis forgot (unless someone else took it meanwhile)
/// and drops records of this server that are no longer its members (a lost release).
pub(super) const HEARTBEAT: &str = r#"
local p, sid = ARGV[1], ARGV[2]
redis.call('SET', p .. ':alive:' .. sid, '1', 'PX', ARGV[3])
redis.call('SADD', p .. ':servers', sid)
local mine = {}
for i = 4, #ARGV, 2 do
  mine[ARGV[i]] = true
  if redis.call('HEXISTS', p .. ':members', ARGV[i]) == 0 then
    local seq = redis.call('INCR', p .. ':seq')
    redis.call('HSET', p .. ':members', ARGV[i], seq .. ' ' .. sid .. ' ' .. ARGV[i + 1])
  end
end
local all = redis.call('HGETALL', p .. ':members')
for i = 1, #all, 2 do
  if string.match(all[i + 1], '^%d+ (%x+) ') == sid and not mine[all[i]] then
    redis.call('HDEL', p .. ':members', all[i])
  end
end
return 0
"#;

/// ARGV: prefix, my sid, channel, topic. For each server whose heartbeat expired: forget it,
/// drop its members' records and publish `left` for each, in the room's wire form. Only the
/// first server to run this for a dead one does it (the SREM), so each `left` is said once.
pub(super) const REAP: &str = r#"
local p = ARGV[1]
local n = 0
for _, sid in ipairs(redis.call('SMEMBERS', p .. ':servers')) do
  if sid ~= ARGV[2] and redis.call('EXISTS', p .. ':alive:' .. sid) == 0 then
    redis.call('SREM', p .. ':servers', sid)
    local all = redis.call('HGETALL', p .. ':members')
    for i = 1, #all, 2 do
      local osid, id, name = string.match(all[i + 1], '^%d+ (%x+) (%d+) (.*)$')
      if osid == sid then
        redis.call('HDEL', p .. ':members', all[i])
        redis.call('PUBLISH', ARGV[3], sid .. ' ' .. id .. ' ' .. ARGV[4] .. '\nL* ' .. name .. ' left\n')
        n = n + 1
      end
    end
  end
end
return n
"#;

/// ARGV: prefix, sid, channel, topic. A server stopping: what REAP would do for it once its
/// heartbeat expired, done now (its members' records dropped with a `left` for any still
/// there, its heartbeat and its place in `P:servers` removed), so it leaves nothing behind.
pub(super) const RETIRE: &str = r#"
local p, sid = ARGV[1], ARGV[2]
redis.call('SREM', p .. ':servers', sid)
redis.call('DEL', p .. ':alive:' .. sid)
local all = redis.call('HGETALL', p .. ':members')
for i = 1, #all, 2 do
  local osid, id, name = string.match(all[i + 1], '^%d+ (%x+) (%d+) (.*)$')
  if osid == sid then
    redis.call('HDEL', p .. ':members', all[i])
    redis.call('PUBLISH', ARGV[3], sid .. ' ' .. id .. ' ' .. ARGV[4] .. '\nL* ' .. name .. ' left\n')
  end
end
if redis.call('SCARD', p .. ':servers') == 0 and redis.call('HLEN', p .. ':members') == 0 then
  redis.call('DEL', p .. ':seq')
end
return 0
"#;
