-- Move one legacy account's collections (a field of hash `collections`) to an app user (a field
-- of hash `collections2`), as one atomic step. It reads and writes only this account's fields,
-- so writes to other users' fields of the same hashes, before, during or after, are neither
-- lost nor a reason to retry; a write to this user's new field is either seen (it ran before,
-- and is merged) or runs after (on the merged list).
--
-- KEYS[1] collections                 the legacy hash (field: old id)
-- KEYS[2] collections2                the new hash (field: app user id)
-- KEYS[3] collections_migrated        the marker: old id -> app user id
-- KEYS[4] collections_migrated_sha1   old id -> SHA-1 of the legacy value that was moved
-- KEYS[5] users                       the legacy accounts (anonymous imports only: a guard)
-- ARGV[1] old id    ARGV[2] app user id
-- ARGV[3] the legacy value the caller read and normalised, ARGV[4] its SHA-1 (recorded)
-- ARGV[5] "1" to delete the legacy field once moved    ARGV[6] "1" for an anonymous id
-- ARGV[7] the 16 bytes of the namespace of the ids given to clashing collections (UUID v5)
-- ARGV[8] the moved collections, normalised: JSON objects joined by commas, each starting
--         with its id member (`{"id":...,"name":...}`)
-- ARGV[9] where each one is in ARGV[8], as JSON: [[id as text, first byte, last byte,
--         length of the id's JSON], ...] (read only when the user's new field exists)
-- ARGV[10] how many collections ARGV[8] holds    ARGV[11] "1" when two of them share an id
--
-- Returns {"done", app user id}   already moved (the marker is set): nothing is written
--         {"registered"}           an anonymous import of an id that is in `users`
--         {"gone"}                 the legacy field does not exist
--         {"changed"}              the legacy value is not the one the caller read: read again
--         {"target_malformed"}     the user's new field is not a JSON list: nothing is written
--         {"moved", added, same, old id 1, new id 1, ...}: `added` collections appended,
--           `same` skipped as already there (same id, name and members), then each clash: the
--           id that was taken and the id the moved collection got instead.
-- The new field's existing text is kept byte for byte; the moved collections are appended.

local legacy, target, marker, digest, users = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local old, new, read, sha, purge, anonymous = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local blob = ARGV[8]

local done = redis.call('HGET', marker, old)
if done then return {'done', done} end
if anonymous == '1' and redis.call('HEXISTS', users, old) == 1 then return {'registered'} end
local value = redis.call('HGET', legacy, old)
if not value then return {'gone'} end
if value ~= read then return {'changed'} end

local function finish(added, same_count, clashes)
  redis.call('HSET', marker, old, new)
  redis.call('HSET', digest, old, sha)
  if purge == '1' then redis.call('HDEL', legacy, old) end
  local out = {'moved', added, same_count}
  for _, v in ipairs(clashes) do out[#out + 1] = v end
  return out
end

local current = redis.call('HGET', target, new)
if not current and ARGV[11] ~= '1' then
  -- Nothing there yet and no two moved collections share an id: the list as given.
  if blob ~= '' then redis.call('HSET', target, new, '[' .. blob .. ']') end
  return finish(tonumber(ARGV[10]), 0, {})
end

-- A UUID version 5: SHA-1 of the namespace and the name, version and variant bits set.
local function uuid5(name)
  local h = redis.sha1hex(ARGV[7] .. name)
  local variant = string.format('%x', 8 + tonumber(string.sub(h, 17, 17), 16) % 4)
  return string.sub(h, 1, 8) .. '-' .. string.sub(h, 9, 12) .. '-5' .. string.sub(h, 14, 16) .. '-'
    .. variant .. string.sub(h, 18, 20) .. '-' .. string.sub(h, 21, 32)
end

local function trim(s)
  return (string.gsub(s, '^%s*(.-)%s*$', '%1'))
end

-- The same collection: same name (trimmed) and the same members in the same order.
local function same(there, rest)
  if there.rest then return there.rest == rest end
  local moved = cjson.decode('{' .. rest)
  if type(there.name) ~= 'string' or trim(there.name) ~= moved.name then return false end
  if type(there.members) ~= 'table' or #there.members ~= #moved.members then return false end
  for i = 1, #moved.members do
    if there.members[i] ~= moved.members[i] then return false end
  end
  return true
end

local taken, head, empty = {}, '[', true
if current then
  local ok, list = pcall(cjson.decode, current)
  if not ok or type(list) ~= 'table' or not string.find(current, '^%s*%[') then
    return {'target_malformed'}
  end
  for _, c in ipairs(list) do
    if type(c) == 'table' and c.id ~= nil and c.id ~= cjson.null then taken[tostring(c.id)] = c end
  end
  head = string.sub(current, 1, string.find(current, '%]%s*$') - 1)
  empty = string.find(head, '^%s*%[%s*$') ~= nil
end

local parts, clashes, same_count = {}, {}, 0
for _, at in ipairs(cjson.decode(ARGV[9])) do
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

if #parts > 0 then
  redis.call('HSET', target, new, head .. (empty and '' or ',') .. table.concat(parts, ',') .. ']')
end
return finish(#parts, same_count, clashes)
