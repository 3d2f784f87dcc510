package store

import "github.com/redis/go-redis/v9"

// The risk store's scripts. Numbers cross between Go and Lua as strings:
// weights in %.17g, which a double survives exactly; times in whole
// milliseconds. A user hash holds
//
//	e        the profile's epoch (Unix ms): weights are 2^((t-e)/half-life)
//	n        successful logins learned
//	T<c>     the total weight of feature c (one byte: risk.Feature.Code)
//	V<c>     the weight of the logins that brought feature c a new value
//	D<c>     the values feature c holds
//	<c><hex> the weight of one value (16 hex digits: its 64-bit key)
//	w<hex>   per network (ASN key), the weight of the logins that brought
//	         a new address in it
//
// and a global hash (one per feature) "_" for the total and <hex> per value.

// riskUserLearnScript adds one login to a user's profile.
// KEYS: the user hash. ARGV: now (ms), half-life (ms), ttl (ms), then per
// feature learned, 20 bytes: code, 16 hex digits, K in 3 digits.
var riskUserLearnScript = redis.NewScript(`
local key = KEYS[1]
local now, hl = tonumber(ARGV[1]), tonumber(ARGV[2])
local q = ARGV[4]
local e = tonumber(redis.call('HGET', key, 'e'))
if not e then
  e = now
  redis.call('HSET', key, 'e', ARGV[1])
end
local x = (now - e) / hl
if x > 64 then
  -- rebase: scale every weight down and start the epoch now
  local s = 2 ^ (-x)
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local f = all[i]
    local c = string.sub(f, 1, 1)
    if #f == 17 or (#f == 2 and (c == 'T' or c == 'V')) then
      redis.call('HSET', key, f, string.format('%.17g', tonumber(all[i + 1]) * s))
    end
  end
  redis.call('HSET', key, 'e', ARGV[1])
  x = 0
end
local w = string.format('%.17g', 2 ^ x)
local asn, ipnew = nil, false
for i = 1, #q, 20 do
  if string.sub(q, i, i) == 'a' then asn = string.sub(q, i + 1, i + 16) end
end
for i = 1, #q, 20 do
  local code = string.sub(q, i, i)
  local field = string.sub(q, i, i + 16)
  local k = tonumber(string.sub(q, i + 17, i + 19))
  if redis.call('HEXISTS', key, field) == 0 then
    redis.call('HINCRBYFLOAT', key, 'V' .. code, w)
    if code == 'i' then ipnew = true end
    local d = tonumber(redis.call('HGET', key, 'D' .. code)) or 0
    if d >= k then
      -- a full table: the lowest weight goes (the lowest key among equals)
      local all = redis.call('HGETALL', key)
      local minf, minw = nil, nil
      for j = 1, #all, 2 do
        local f = all[j]
        if #f == 17 and string.sub(f, 1, 1) == code then
          local v = tonumber(all[j + 1])
          if minw == nil or v < minw or (v == minw and f < minf) then minf, minw = f, v end
        end
      end
      if minf then
        redis.call('HDEL', key, minf)
        if code == 'a' then redis.call('HDEL', key, 'w' .. string.sub(minf, 2)) end
      end
    else
      redis.call('HINCRBY', key, 'D' .. code, 1)
    end
  end
  redis.call('HINCRBYFLOAT', key, field, w)
  redis.call('HINCRBYFLOAT', key, 'T' .. code, w)
end
if ipnew and asn then redis.call('HINCRBYFLOAT', key, 'w' .. asn, w) end
redis.call('HINCRBY', key, 'n', 1)
redis.call('PEXPIRE', key, ARGV[3])
return 1
`)

// riskUserReadScript returns what scoring needs from a user's profile, as
// one comma-separated string (one allocation to read, not one per field):
// e, n, then per feature its value's weight, total and new-value weight,
// then the weights of the nearby values, then (with an ASN) the network's
// new-address weight. A missing field is empty.
// KEYS: the user hash. ARGV: the features (17 bytes each: code and 16 hex
// digits), the nearby hours (likewise).
var riskUserReadScript = redis.NewScript(`
local fields = {'e', 'n'}
local q, asn = ARGV[1], nil
for i = 1, #q, 17 do
  local code = string.sub(q, i, i)
  fields[#fields + 1] = string.sub(q, i, i + 16)
  fields[#fields + 1] = 'T' .. code
  fields[#fields + 1] = 'V' .. code
  if code == 'a' then asn = 'w' .. string.sub(q, i + 1, i + 16) end
end
local near = ARGV[2]
for i = 1, #near, 17 do
  fields[#fields + 1] = string.sub(near, i, i + 16)
end
if asn then fields[#fields + 1] = asn end
local v = redis.call('HMGET', KEYS[1], unpack(fields))
for i = 1, #v do
  if not v[i] then v[i] = '' end
end
return table.concat(v, ',')
`)

// riskGlobalReadScript returns each feature's value weight and total.
// KEYS: the features' global hashes. ARGV: their values' keys, 16 hex
// digits each, in KEYS order.
var riskGlobalReadScript = redis.NewScript(`
local out = {}
local q = ARGV[1]
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], string.sub(q, 16 * i - 15, 16 * i), '_')
  out[#out + 1] = v[1] or ''
  out[#out + 1] = v[2] or ''
end
return table.concat(out, ',')
`)

// riskGlobalLearnScript adds one login to the global tables, unless the
// user's gate is still closed; a full table first drops the lowest of a
// random sample of its values.
// KEYS: the user's gate, then the features' global hashes. ARGV: now
// (ms), the gate's end (ms; "0": no gate), the weight, the values' keys
// (16 hex digits and K in 6 digits each, in KEYS order), the tables' ttl
// (ms), the sample size.
var riskGlobalLearnScript = redis.NewScript(`
local now = tonumber(ARGV[1])
if ARGV[2] ~= '0' then
  local g = tonumber(redis.call('GET', KEYS[1]))
  if g and g > now then return 0 end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[2]) - now)
end
local q, w, sample = ARGV[4], ARGV[3], tonumber(ARGV[6])
for i = 2, #KEYS do
  local key = KEYS[i]
  local at = 22 * (i - 2) + 1
  local field = string.sub(q, at, at + 15)
  local k = tonumber(string.sub(q, at + 16, at + 21))
  if redis.call('HEXISTS', key, field) == 0 and redis.call('HLEN', key) - 1 >= k then
    local s = redis.call('HRANDFIELD', key, sample, 'WITHVALUES')
    local minf, minw = nil, nil
    for j = 1, #s, 2 do
      if s[j] ~= '_' then
        local v = tonumber(s[j + 1])
        if minw == nil or v < minw then minf, minw = s[j], v end
      end
    end
    if minf then redis.call('HDEL', key, minf) end
  end
  redis.call('HINCRBYFLOAT', key, field, w)
  redis.call('HINCRBYFLOAT', key, '_', w)
  redis.call('PEXPIRE', key, ARGV[5])
end
return 1
`)
