-- Delete one moved account's legacy collections, as one atomic step, only when what is there now
-- is exactly what was moved (a legacy value written after the move is kept, and reported).
--
-- KEYS[1] collections   KEYS[2] collections_migrated   KEYS[3] collections_migrated_sha1
-- ARGV[1] old id
-- Returns "purged", "not_migrated" (no marker), "gone" (nothing left to delete) or "changed".

local legacy, marker, digest, old = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
if not redis.call('HGET', marker, old) then return 'not_migrated' end
local value = redis.call('HGET', legacy, old)
if not value then return 'gone' end
if redis.sha1hex(value) ~= redis.call('HGET', digest, old) then return 'changed' end
redis.call('HDEL', legacy, old)
return 'purged'
