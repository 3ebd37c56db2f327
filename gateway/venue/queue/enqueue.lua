-- Appends one entry of commands atomically with their clientOrderId claims, so a
-- duplicate never reaches the stream and a claim never exists without its order, and
-- with each new order in its account's set of open orders, which holds the account to
-- its limit: a new order that would take the account past it is refused, not queued.
-- KEYS: stream, queued-runs sorted set, the shard's runs list, queued-orders counts, then
--   per account with claims in this append its claim hashes of the bucket before, its
--   bucket and the bucket after, and its open orders' set.
-- ARGV: traceparent, claim ttl, then four strings covering every command in order:
--   runs of consecutive commands as "account:count," each (account: the n-th account
--   of KEYS, 0 for commands without a claim); per command "order id," for a new order
--   (readable as queued until persisted) or "," for another; per command
--   "clientOrderId " or " " (a clientOrderId has no spaces); the framed commands,
--   concatenated; per command "size," of its frame; then the shard, and the most open
--   orders an account may have (its queued new orders count as open until the writer
--   has persisted them closed and taken them out of the set).
-- Returns the stream id ("" when no command was queued), then per command the original
-- order id of a duplicate, "!" for a new order refused at the open-orders limit, or ""
-- for a command that was queued.
-- A few strings rather than arguments per command, one HMGET per claim hash and one HSET
-- per hash for the whole append, and what makes the queued orders findable is per run
-- of consecutive order ids, not per order: commands per order were most of Redis's time.
local CHUNK = 1000  -- unpack() is bounded by Lua's C stack
local sub, gmatch, tonumber = string.sub, string.gmatch, tonumber
local frames, sizes, shard, open_limit = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local next_id = gmatch(ARGV[4], '([^,]*),')
local next_coid = gmatch(ARGV[5], '([^ ]*) ')
-- Tables filled through counters: Lua's # is a search of the table each time.
local answer, n_answer = {''}, 1
local queued, n_queued = {}, 0  -- the new orders' ids (text), in entry order
local dropped = false
local known, claims, n_claims = {}, {}, {}  -- per account: clientOrderId -> order id; new claims
local open_count, opened, n_opened = {}, {}, {}  -- per account: open orders; new ones
local function lookup(account, coids, n)
  local found = known[account]
  if found == nil then
    found = {}
    known[account] = found
    claims[account] = {}
    n_claims[account] = 0
  end
  for day = 0, 2 do
    local key = KEYS[4 * account + 1 + day]
    if n > 0 and redis.call('EXISTS', key) == 1 then
      for j = 1, n, CHUNK do
        local last = math.min(j + CHUNK - 1, n)
        local values = redis.call('HMGET', key, unpack(coids, j, last))
        for k = 1, last - j + 1 do
          local value = values[k]
          if value and not found[coids[j + k - 1]] then
            found[coids[j + k - 1]] = value
          end
        end
      end
    end
  end
  return found
end
for account, n in gmatch(ARGV[3], '(%d+):(%d+),') do
  account, n = tonumber(account), tonumber(n)
  local ids, coids = {}, {}
  for i = 1, n do
    ids[i], coids[i] = next_id(), next_coid()
  end
  local found, claim, n_claim, open_ids = nil, nil, 0, nil
  if account > 0 then
    local wanted, n_wanted = {}, 0
    for i = 1, n do
      if coids[i] ~= '' then
        n_wanted = n_wanted + 1
        wanted[n_wanted] = coids[i]
      end
    end
    found = lookup(account, wanted, n_wanted)
    claim, n_claim = claims[account], n_claims[account]
    if open_count[account] == nil then
      open_count[account] = redis.call('SCARD', KEYS[4 * account + 4])
      opened[account], n_opened[account] = {}, 0
    end
    open_ids = opened[account]
  end
  for i = 1, n do
    local order_id, coid = ids[i], coids[i]
    local original = false
    if found and coid ~= '' then original = found[coid] end
    local refused = false
    if not original and order_id ~= '' and open_ids then
      if open_count[account] >= open_limit then
        refused = true
      else
        open_count[account] = open_count[account] + 1
        n_opened[account] = n_opened[account] + 1
        open_ids[n_opened[account]] = order_id
      end
    end
    if found and coid ~= '' and not original and not refused then
      -- a repeat later in this append is a duplicate of this one
      found[coid] = order_id
      claim[n_claim + 1], claim[n_claim + 2] = coid, order_id
      n_claim = n_claim + 2
    end
    n_answer = n_answer + 1
    if original then
      answer[n_answer] = original
      dropped = true
    elseif refused then
      answer[n_answer] = '!'
      dropped = true
    else
      answer[n_answer] = ''
      if order_id ~= '' then
        n_queued = n_queued + 1
        queued[n_queued] = order_id
      end
    end
  end
  if account > 0 then n_claims[account] = n_claim end
end
-- Only when a duplicate or a refused order is dropped are the frames cut, by their sizes, to keep the
-- others (answer[i + 1] is command i's).
local commands = frames
if dropped then
  local parts, n_parts, at, i = {}, 0, 1, 1
  for size in gmatch(sizes, '(%d+),') do
    i = i + 1
    size = tonumber(size)
    if answer[i] == '' then
      n_parts = n_parts + 1
      parts[n_parts] = sub(frames, at, at + size - 1)
    end
    at = at + size
  end
  commands = table.concat(parts)
end
if commands ~= '' then
  -- The entry carries how many orders its shard has queued, itself included: the writer
  -- says how far the shard is persisted by the last entry it has stored.
  local total = redis.call('HINCRBY', KEYS[4], shard, n_queued)
  local entry = redis.call('XADD', KEYS[1], '*', '$FIELD_COMMANDS', commands,
                           '$FIELD_TRACEPARENT', ARGV[1], '$FIELD_QUEUED', total)
  answer[1] = entry
  -- Each run of consecutive order ids, as "first:last:shard:entry", scored by its first.
  local scored, runs, n_runs, first, previous = {}, {}, 0, nil, nil
  for i = 1, n_queued + 1 do
    local id = queued[i] and tonumber(queued[i])
    if first and id ~= previous + 1 then
      n_runs = n_runs + 1
      runs[n_runs] = first .. ':' .. queued[i - 1] .. ':' .. shard .. ':' .. entry
      scored[2 * n_runs - 1], scored[2 * n_runs] = first, runs[n_runs]
      first = nil
    end
    if id and not first then first = queued[i] end
    previous = id
  end
  for j = 1, n_runs, CHUNK do
    local last = math.min(j + CHUNK - 1, n_runs)
    redis.call('ZADD', KEYS[2], unpack(scored, 2 * j - 1, 2 * last))
    redis.call('RPUSH', KEYS[3], unpack(runs, j, last))
  end
end
for account, claim in pairs(claims) do
  local n = n_claims[account]
  if n > 0 then
    local key = KEYS[4 * account + 2]
    for j = 1, n, 2 * CHUNK do
      redis.call('HSET', key, unpack(claim, j, math.min(j + 2 * CHUNK - 1, n)))
    end
    redis.call('EXPIRE', key, ARGV[2])
  end
end
for account, ids in pairs(opened) do
  local n = n_opened[account]
  for j = 1, n, CHUNK do
    redis.call('SADD', KEYS[4 * account + 4], unpack(ids, j, math.min(j + CHUNK - 1, n)))
  end
end
return answer
