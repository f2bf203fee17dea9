-- The GCRA, all-or-nothing over a tier's rates (bastion.RedisRateLimiter; see _script.py for the request).
-- KEYS[i]: rate i's theoretical arrival time (TAT, µs on the Redis clock). ARGV[1]: cost; ARGV[2i],
-- ARGV[2i+1]: rate i's interval and tau (= burst × interval) in µs. Returns, per rate, d = max(TAT - now, 0)
-- before this request (µs until its bucket is full), or -1 - d when that rate refuses (d + cost × interval >
-- tau): one integer for a one-rate tier, else an array. The new TATs are written only if every rate admits
-- (nothing is written on denial), with PX = the time until the bucket is full again. The client derives
-- remaining / reset_after / retry_after from d exactly (Rust, Decision._from_resp), so the script does the
-- least work a check needs: TIME, one GET and one SET per rate, no tables for a one-rate tier. Lua numbers
-- are doubles: exact for integers below 2^53 µs (285 years); the TAT is written with %d (a C long), never
-- in exponent form.
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local cost = tonumber(ARGV[1])
local n = #KEYS
if n == 1 then
  local step = cost * tonumber(ARGV[2])
  local d = (tonumber(redis.call('GET', KEYS[1])) or now) - now
  if d < 0 then d = 0 end
  local r = d + step
  if r > tonumber(ARGV[3]) then return -1 - d end
  if step > 0 then
    redis.call('SET', KEYS[1], string.format('%d', now + r), 'PX', string.format('%d', math.ceil(r / 1000)))
  end
  return d
end
local out = {}
local ok = true
for i = 1, n do
  local d = (tonumber(redis.call('GET', KEYS[i])) or now) - now
  if d < 0 then d = 0 end
  if d + cost * tonumber(ARGV[2 * i]) > tonumber(ARGV[2 * i + 1]) then
    ok = false
    out[i] = -1 - d
  else
    out[i] = d
  end
end
if ok and cost > 0 then
  for i = 1, n do
    local r = out[i] + cost * tonumber(ARGV[2 * i])
    redis.call('SET', KEYS[i], string.format('%d', now + r), 'PX', string.format('%d', math.ceil(r / 1000)))
  end
end
return out
