-- Records how far shards are persisted, once the writer has committed it: per shard the
-- last orders-stream entry all of whose orders are in Postgres, with its count
-- (FIELD_QUEUED). The runs of the entries up to there leave the queued runs, and the
-- stream keeps every entry after it, and those before it for ARGV[1] ms.
-- KEYS: persisted marks, queued runs, then per shard its runs list and orders stream.
-- ARGV: retain ms, then per shard: shard, entry ms, entry seq, count.
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local retain = tonumber(ARGV[1])
local function after(ms, seq, than_ms, than_seq)
  return ms > than_ms or (ms == than_ms and seq > than_seq)
end
for i = 0, (#KEYS - 2) / 2 - 1 do
  local runs, stream = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local shard, ms_text, seq_text = ARGV[2 + 4 * i], ARGV[3 + 4 * i], ARGV[4 + 4 * i]
  local ms, seq = tonumber(ms_text), tonumber(seq_text)
  local before = redis.call('HGET', KEYS[1], shard)
  local newer = true
  if before then
    local before_ms, before_seq = string.match(before, '^(%d+)%-(%d+) ')
    newer = after(ms, seq, tonumber(before_ms), tonumber(before_seq))
  end
  if newer then
    redis.call('HSET', KEYS[1], shard, ms_text .. '-' .. seq_text .. ' ' .. ARGV[5 + 4 * i])
    while true do
      local run = redis.call('LINDEX', runs, 0)
      if not run then break end
      local run_ms, run_seq = string.match(run, ':(%d+)%-(%d+)$')
      if after(tonumber(run_ms), tonumber(run_seq), ms, seq) then break end
      redis.call('LPOP', runs)
      redis.call('ZREM', KEYS[2], run)
    end
    local keep = math.min(ms, now_ms - retain)
    if keep > 0 then redis.call('XTRIM', stream, 'MINID', '~', keep) end
  end
end
return 0
