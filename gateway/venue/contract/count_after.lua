-- Counts the entries of a stream after an id, up to a cap: the last resort of a lag
-- estimate when the lag can be neither read nor interpolated (venue.contract.lag).
-- KEYS: the stream. ARGV: the id, the cap. Returns the count.
local cap = tonumber(ARGV[2])
local cursor = '(' .. ARGV[1]
local n = 0
while n < cap do
  local chunk = redis.call('XRANGE', KEYS[1], cursor, '+', 'COUNT', math.min(1000, cap - n))
  local got = #chunk
  if got == 0 then break end
  n = n + got
  cursor = '(' .. chunk[got][1]
end
return n
