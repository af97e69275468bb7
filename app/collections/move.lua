-- Move legacy accounts' collections (fields of hash `collections`) to app users (fields of hash
-- `collections2`). A script runs atomically: Redis runs nothing else meanwhile, so each account
-- moves completely or not at all. It reads and writes only these accounts' fields, so writes to
-- other users' fields of the same hashes, before, during or after, are neither lost nor a reason
-- to retry; a write to a moved user's new field is either seen (it ran before, and is merged) or
-- runs after (on the merged list). One run takes a few dozen accounts (about a millisecond).
--
-- KEYS[1] collections                 the legacy hash (field: old id)
-- KEYS[2] collections2                the new hash (field: app user id)
-- KEYS[3] collections_migrated        the marker: old id -> app user id
-- KEYS[4] collections_migrated_sha1   old id -> SHA-1 of the legacy value that was moved
-- KEYS[5] users                       the legacy accounts (anonymous imports only: a guard)
-- ARGV[1] "1" to delete each legacy field once moved    ARGV[2] "1" for anonymous ids
-- ARGV[3] the 16 bytes of the namespace of the ids given to clashing collections (UUID v5)
-- then per account, eight values:
--   old id; app user id; the legacy value the caller read and normalised; its SHA-1 (recorded);
--   the moved collections, normalised: JSON objects joined by commas, each starting with its id
--   member (`{"id":...,"name":...}`); where each one is in them, as JSON: [[id as text, first
--   byte, last byte, length of the id's JSON], ...] (read only when the user's new field
--   exists); how many there are; "1" when two of them share an id.
--
-- Returns one answer per account:
--   {"done", app user id}   already moved (the marker is set): nothing is written
--   {"registered"}           an anonymous import of an id that is in `users`
--   {"gone"}                 the legacy field does not exist
--   {"changed"}              the legacy value is not the one the caller read: read again
--   {"target_malformed"}     the user's new field is not a JSON list: nothing is written
--   {"error", message}       this account failed (nothing of it is written); the others go on
--   {"moved", added, same, old id 1, new id 1, ...}: `added` collections appended, `same`
--     skipped as already there (same id, name and members), then each clash: the id that was
--     taken and the id the moved collection got instead.
-- The new field's existing text is kept byte for byte; the moved collections are appended.

local legacy, target, marker, digest, users = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local purge, anonymous, namespace = ARGV[1], ARGV[2], ARGV[3]

-- A UUID version 5: SHA-1 of the namespace and the name, version and variant bits set.
local function uuid5(name)
  local h = redis.sha1hex(namespace .. name)
  local variant = string.format('%x', 8 + tonumber(string.sub(h, 17, 17), 16) % 4)
  return string.sub(h, 1, 8) .. '-' .. string.sub(h, 9, 12) .. '-5' .. string.sub(h, 14, 16) .. '-'
    .. variant .. string.sub(h, 18, 20) .. '-' .. string.sub(h, 21, 32)
end

local function trim(s)
  return (string.gsub(s, '^%s*(.-)%s*$', '%1'))
end

-- Lua's cjson reads every number as a double: 123456789012345 would come back as 1.2345678901234e+14
-- and 12345678901234567 as 12345678901234568. So before decoding, each number outside strings is
-- replaced by a string holding its exact text behind NUMBER (a byte no id or member begins with):
-- ids and members are compared by their digits, and a number never equals a string.
local NUMBER = '\1#'
local function exact_numbers(s)
  local out, copied, pos = {}, 1, 1
  while true do
    local at = string.find(s, '["%-%d]', pos)
    if at == nil then break end
    if string.byte(s, at) == 34 then  -- a string: skipped, escapes and all
      pos = at + 1
      while true do
        local q = string.find(s, '["\\]', pos)
        if q == nil then return s end  -- not JSON: cjson.decode says so
        if string.byte(s, q) == 34 then pos = q + 1; break end
        pos = q + 2
      end
    else
      local _, last = string.find(s, '^%-?[%d%.eE+%-]*', at)
      out[#out + 1] = string.sub(s, copied, at - 1)
      out[#out + 1] = '"\\u0001#' .. string.sub(s, at, last) .. '"'
      copied, pos = last + 1, last + 1
    end
  end
  if copied == 1 then return s end
  out[#out + 1] = string.sub(s, copied)
  return table.concat(out)
end

-- An id as the caller keys it: a number by its digits, a string as it is.
local function id_key(id)
  if type(id) == 'string' and string.sub(id, 1, 2) == NUMBER then return string.sub(id, 3) end
  return tostring(id)
end

-- The same collection: same name (trimmed) and the same members in the same order.
local function same(there, rest)
  if there.rest then return there.rest == rest end
  local moved = cjson.decode(exact_numbers('{' .. rest))
  if type(there.name) ~= 'string' or trim(there.name) ~= moved.name then return false end
  if type(there.members) ~= 'table' or #there.members ~= #moved.members then return false end
  for i = 1, #moved.members do
    if there.members[i] ~= moved.members[i] then return false end
  end
  return true
end

-- The user's list with the moved collections appended: (new text or nil, added, same, clashes),
-- or nil when the list there is not a JSON list.
local function merge(old, current, blob, index)
  local ok, list = pcall(cjson.decode, exact_numbers(current))
  if not ok or type(list) ~= 'table' or not string.find(current, '^%s*%[') then return nil end
  local taken = {}
  for _, c in ipairs(list) do
    if type(c) == 'table' and c.id ~= nil and c.id ~= cjson.null then taken[id_key(c.id)] = c end
  end
  local head = string.sub(current, 1, string.find(current, '%]%s*$') - 1)
  local empty = string.find(head, '^%s*%[%s*$') ~= nil
  local parts, clashes, same_count = {}, {}, 0
  for _, at in ipairs(cjson.decode(index)) do
    local key, first, last, id_length = at[1], at[2], at[3], at[4]
    local rest = string.sub(blob, first + 7 + id_length, last)  -- after `{"id":<id>,`
    local there = taken[key]
    if there == nil then
      parts[#parts + 1] = string.sub(blob, first, last)
      taken[key] = {rest = rest}
    elseif same(there, rest) then
      same_count = same_count + 1
    else
      local base = uuid5(old .. '/' .. key)
      local alt, n = base, 1
      while taken[alt] ~= nil do
        n = n + 1
        alt = base .. '-' .. n
      end
      parts[#parts + 1] = '{"id":"' .. alt .. '",' .. rest
      taken[alt] = {rest = rest}
      clashes[#clashes + 1] = key
      clashes[#clashes + 1] = alt
    end
  end
  local text = nil
  if #parts > 0 then text = head .. (empty and '' or ',') .. table.concat(parts, ',') .. ']' end
  return text, #parts, same_count, clashes
end

local function move(old, new, read, sha, blob, index, count, dup)
  local done = redis.call('HGET', marker, old)
  if done then return {'done', done} end
  if anonymous == '1' and redis.call('HEXISTS', users, old) == 1 then return {'registered'} end
  local value = redis.call('HGET', legacy, old)
  if not value then return {'gone'} end
  if value ~= read then return {'changed'} end

  local current = redis.call('HGET', target, new)
  local text, added, same_count, clashes
  if not current and dup ~= '1' then
    -- Nothing there yet and no two moved collections share an id: the list as given.
    if blob ~= '' then text = '[' .. blob .. ']' end
    added, same_count, clashes = tonumber(count), 0, {}
  else
    text, added, same_count, clashes = merge(old, current or '[]', blob, index)
    if added == nil then return {'target_malformed'} end
  end

  if text then redis.call('HSET', target, new, text) end
  redis.call('HSET', marker, old, new)
  redis.call('HSET', digest, old, sha)
  if purge == '1' then redis.call('HDEL', legacy, old) end
  local out = {'moved', added, same_count}
  for _, v in ipairs(clashes) do out[#out + 1] = v end
  return out
end

local answers = {}
for i = 4, #ARGV, 8 do
  local ok, answer = pcall(move, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5],
                           ARGV[i + 6], ARGV[i + 7])
  if not ok then answer = {'error', tostring(answer)} end
  answers[#answers + 1] = answer
end
return answers
