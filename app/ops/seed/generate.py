"""The INSERT that fills `user_settings` with realistic synthetic rows, awkward ones included.

One `INSERT … SELECT … FROM generate_series` writes every row; all pseudo-randomness comes from
hashes of the seed and the row id (`sha512`, `md5`), so the same (users, seed) on the same starting
table gives byte-identical rows. A row's awkward kinds come from its position in the run (`g`, shifted by a
seed-derived offset), so every kind appears in a fixed share of the rows:

=====================================  ==============================================================
kind                                   where (s = (g + offset) % 100)
=====================================  ==============================================================
NULL keycloak_user_id                  s = 7
empty keycloak_user_id ('')            s = 23
blank keycloak_user_id (spaces, tabs,  s = 41
newlines)
duplicate keycloak_user_id             s = 58 copies the id of the row at s = 50 (8 ids earlier); on
                                       every 2nd hundred s = 73 joins that group too, on every 4th
                                       s = 88 as well, so groups of 2, 3 and 4 rows exist; the row
                                       with the highest id in a group is its winner; a group
                                       never reaches back before the call's first row
every nullable column NULL             s = 95
unicode (accents, CJK, emoji, RTL) in  s % 25 = 12
git_user_name, email, git_user_email,
language and agent
naive accepted_tos at a DST change     (g + offset) % 50 = 19
awkward floats (0.1, 1e-300, max       billing_margin where s % 20 = 4, max_budget_per_task where
double, -0.0, NaN)                     s % 20 = 14
huge mcp_config (~200 KB)              (g + offset) % 10000 = 1234
plaintext secrets (`sk-…`)             the oldest 2% of the rows seeded (g * 50 < users); later rows
                                       hold Fernet-shaped ciphertext (`gAAAAA…`, base64url)
=====================================  ==============================================================

Other columns (NULLs, JSON shapes, SQL NULL and JSON `null` mcp_config, secrets present or not)
vary by hash. `SeedSummary` (summary.py) counts every kind by querying the rows just written, so
its figures are what the table holds, never what the generator meant to write.
"""

from __future__ import annotations

import hashlib
import json

# Naive wall-clock instants at or inside the hour a daylight-saving change skips or repeats
# (America/New_York and Europe/Berlin); read as local time they do not exist or are ambiguous.
DST_TIMESTAMPS: tuple[str, ...] = (
    "2023-03-12 02:30:00",
    "2023-11-05 01:30:00",
    "2023-03-26 02:30:00",
    "2023-10-29 02:30:00",
    "2024-03-10 02:00:00",
    "2024-03-10 02:59:59.999999",
    "2024-11-03 01:00:00",
    "2024-11-03 01:59:59.999999",
    "2024-03-31 02:15:00",
    "2024-10-27 02:45:00",
    "2025-03-09 02:30:00",
    "2025-11-02 01:30:00",
)

# Awkward doubles, as PostgreSQL spells them (input and output agree for each).
AWKWARD_FLOATS: tuple[str, ...] = ("0.1", "1e-300", "1.7976931348623157e+308", "-0", "NaN")

# Share of each awkward kind (s values, see the module docstring).
_SLOT_NULL, _SLOT_EMPTY, _SLOT_BLANK = 7, 23, 41
_SLOT_LEADER, _SLOT_ALL_NULL = 50, 95
HUGE_EVERY, HUGE_AT = 10_000, 1234
HUGE_JSON_MIN_BYTES = 100_000

_BLANKS = ("' '", "'   '", "E'\\t'", "E'\\n'", "E' \\t\\n '")
_UNICODE_NAMES = (
    "José Müller", "Zoë Ångström", "山田太郎", "김민준", "Ana 🚀 Souza", "👩🏽‍💻 Dev", "محمد العلي", "דנה לוי",
)
_UNICODE_EMAILS = (
    "josé.müller@exämple.com", "zoë@ångström.se", "山田@例え.jp", "민준@예시.kr",
    "ana🚀@example.com", "dev👩🏽‍💻@example.org", "محمد@مثال.com", "דנה@דוגמה.co.il",
)
_UNICODE_LANGUAGES = ("Français", "中文", "日本語", "한국어", "Español 🇪🇸", "Deutsch ß", "العربية", "עברית")
_UNICODE_AGENTS = ("Agént", "エージェント", "代理人", "에이전트", "Agent 🤖", "Агент", "وكيل", "סוכן")
_FIRST = ("alex", "sam", "maria", "li", "omar", "priya", "jonas", "emma", "noah", "fatima", "wei", "lucas")
_LAST = ("smith", "garcia", "chen", "kumar", "nguyen", "okafor", "schmidt", "rossi", "silva", "kim")
_LANGUAGES = ("en", "en", "en", "de", "fr", "es", "zh-Hans", "ja", "ko", "pt-BR", "it", "ar")
_AGENTS = ("CodeActAgent", "CodeActAgent", "CodeActAgent", "BrowsingAgent", "ReadOnlyAgent", "LocAgent")
_MODELS = (
    "anthropic/claude-sonnet-4-20250514", "anthropic/claude-3-7-sonnet-20250219", "openai/gpt-4o",
    "openai/o3-mini", "litellm_proxy/claude-sonnet-4-20250514", "gemini/gemini-2.5-pro", "deepseek/deepseek-chat",
)
_KEY_PREFIXES = ("", "proj-", "ant-api03-", "or-v1-")


def _arr(values: tuple[str, ...]) -> str:
    """A SQL text array literal of the given values."""
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def _pick(values: tuple[str, ...], byte: int) -> str:
    return f"({_arr(values)})[1 + get_byte(r.h, {byte}) % {len(values)}]"


def _kc_uuid(id_expr: str) -> str:
    """A version-4-shaped UUID string derived from (seed, id)."""
    return (
        f"overlay(overlay(md5(:seed_txt || '/kc/' || ({id_expr})::text) placing '4' from 13 for 1)"
        f" placing substr('89ab', ((({id_expr}) % 4 + 4) % 4)::int + 1, 1) from 17 for 1)::uuid::text"
    )


# Rows outside duplicate groups take their UUID from the row hash (cheaper than another md5).
_HASH_UUID = (
    "encode(set_byte(set_byte(substring(r.h from 49 for 16), 6, (get_byte(r.h, 54) & 15) | 64),"
    " 8, (get_byte(r.h, 56) & 63) | 128), 'hex')::uuid::text"
)


def _b64url_pool(kind: str, size: int, raw_bytes: str) -> str:
    """`size` base64url strings of equal length, concatenated into one bytea (sliced in O(1)).

    `raw_bytes` is a bytea expression of `i` (0 .. size-1) and `sha`, a hash of (seed, kind, i);
    its length is a multiple of 3 (no padding inside a token) or 1 (the token's last byte).
    """
    return (
        "(SELECT convert_to(string_agg(replace(replace(encode(" + raw_bytes + ", 'base64'), '+', '-'),"
        " '/', '_'), '' ORDER BY i), 'UTF8') FROM ("
        f"SELECT i, sha512(convert_to(:seed_txt || '/{kind}/' || i, 'UTF8')) AS sha"
        f" FROM generate_series(0, {size - 1}) AS i) AS p)"
    )


# A Fernet token is base64url of 0x80, an 8-byte big-endian timestamp, a 16-byte IV, the AES
# ciphertext (here 64 bytes) and a 32-byte HMAC: 121 bytes, 164 characters starting `gAAAAA`.
# It is spliced from pools of pre-encoded pieces (12 + 4 * 27 + 1 bytes), six pseudo-random
# picks per token, so no row pays for base64 or for enough hash output to fill 112 bytes.
_FERNET_HEAD = _b64url_pool(
    "head", 256,
    "'\\x80'::bytea || int8send(1546300800 + i * 524288"
    " + (get_byte(sha, 0) * 65536 + get_byte(sha, 1) * 256 + get_byte(sha, 2)) % 524288)"
    " || substring(sha from 4 for 3)"
)
_FERNET_BODY = _b64url_pool("body", 256, "substring(sha from 1 for 27)")
_FERNET_TAIL = _b64url_pool("tail", 256, "substring(sha from 1 for 1)")


def _fernet(k: int) -> str:
    base = k * 6
    parts = [f"substring({_FERNET_HEAD} from 16 * get_byte(r.h2, {base}) + 1 for 16)"]
    parts += [f"substring({_FERNET_BODY} from 36 * get_byte(r.h2, {base + j}) + 1 for 36)" for j in range(1, 5)]
    parts.append(f"substring({_FERNET_TAIL} from 4 * get_byte(r.h2, {base + 5}) + 1 for 4)")
    return "convert_from(" + " || ".join(parts) + ", 'UTF8')"


def _secret(k: int, null_byte: int, null_below: int) -> str:
    """Secret column k: NULL, plaintext `sk-…` on the oldest rows, else a Fernet-shaped token."""
    plain = (
        f"'sk-' || {_pick(_KEY_PREFIXES, 33 + k)} || replace(replace(encode(substring("
        f"sha512(convert_to(:seed_txt || '/sk/{k}/' || r.id, 'UTF8')) from 1 for 36), 'base64'), '+', '-'), '/', '_')"
    )
    return (
        f"CASE WHEN r.s = {_SLOT_ALL_NULL} OR get_byte(r.h, {null_byte}) < {null_below} THEN NULL"
        f" WHEN r.g * 50 < :n THEN {plain} ELSE {_fernet(k)} END"
    )


def _nullable(expr: str) -> str:
    return f"CASE WHEN r.s = {_SLOT_ALL_NULL} THEN NULL ELSE {expr} END"


def _float(awkward_slot: int, shift: int, normal: str) -> str:
    awkward = "ARRAY[" + ", ".join(f"'{v}'::float8" for v in AWKWARD_FLOATS) + "]"
    return (
        f"CASE WHEN r.s % 20 = {awkward_slot} THEN ({awkward})[1 + (r.cyc5 + {shift}) % 5]"
        f" WHEN r.s = {_SLOT_ALL_NULL} THEN NULL ELSE {normal} END"
    )


def _json_literal(value: object) -> str:
    return "'" + json.dumps(value, ensure_ascii=False).replace("'", "''") + "'::json"


# Many users share a configuration, so the ordinary shapes are constants (parsed once per seed).
_SIMPLE_JSON = tuple(
    _json_literal({"sse_servers": [url], "stdio_servers": [], "shttp_servers": []})
    for url in ("https://mcp.example.com/sse", "https://tools.example.org/mcp/sse", "http://localhost:8931/sse")
)
_NESTED_JSON = tuple(
    _json_literal(
        {
            "sse_servers": [{"url": "https://mcp.example.com/sse", "api_key": None}],
            "stdio_servers": [
                {
                    "name": "fetch",
                    "command": "uvx",
                    "args": ["mcp-server-fetch", f"--lang={lang}"],
                    "env": {"GREETING": greeting, "RTL": "مرحبا بالعالم", "EMPTY": None},
                }
            ],
            "shttp_servers": [],
            "meta": {"nested": {"depth": {"level": 3, "tags": ["α", "β", "γ"], "flags": [True, False, None]}}},
        }
    )
    for lang, greeting in (("日本語", "héllo wörld 👋"), ("עברית", "שלום 🌍"), ("中文", "你好 ✨"))
)
# Whitespace and number spellings that only the json type keeps (jsonb would normalize them).
_SPELLED_JSON = (
    "E'{\\n\\t\"stdio_servers\" : [ {\"name\" : \"calc\", \"command\" : \"python\", "
    "\"args\" : [\"-m\", \"calc\"], \"env\" : { } } ],\\n\\t\"limits\" : {\"timeout\" : 2.50, "
    "\"max\" : 1e3, \"ratio\" : -0.0, \"big\" : 12345678901234567890}\\n}'::json"
)
# ~200 KB: a long list of stdio servers, built once per seed.
_HUGE_JSON = (
    "(SELECT ('{\"stdio_servers\": [' || string_agg(format("
    "'{\"name\": \"server-%s\", \"command\": \"npx\", \"args\": [\"-y\", "
    "\"@modelcontextprotocol/server-filesystem\", \"/srv/data/%s\"], "
    "\"env\": {\"ROOT\": \"/home/dev/projects/%s\", \"LANG\": \"日本語\", \"NOTE\": \"données partagées\"}}', "
    "i, i, i), ', ' ORDER BY i) || '], \"sse_servers\": [], \"shttp_servers\": []}')::json "
    "FROM generate_series(1, 940) AS i)"
)


def _mcp_config() -> str:
    simple = f"(ARRAY[{', '.join(_SIMPLE_JSON)}])[1 + get_byte(r.h, 46) % {len(_SIMPLE_JSON)}]"
    nested = f"(ARRAY[{', '.join(_NESTED_JSON)}])[1 + get_byte(r.h, 46) % {len(_NESTED_JSON)}]"
    return (
        f"CASE WHEN r.s = {_SLOT_ALL_NULL} THEN NULL"
        f" WHEN (r.g + :off) % {HUGE_EVERY} = {HUGE_AT} THEN {_HUGE_JSON}"
        " WHEN get_byte(r.h, 23) < 50 THEN NULL"
        " WHEN get_byte(r.h, 23) < 64 THEN 'null'::json"
        " WHEN get_byte(r.h, 23) < 90 THEN '{}'::json"
        f" WHEN get_byte(r.h, 23) < 180 THEN {simple}"
        f" WHEN get_byte(r.h, 23) < 230 THEN {nested}"
        f" ELSE {_SPELLED_JSON} END"
    )


def _keycloak_id() -> str:
    return (
        f"CASE r.s WHEN {_SLOT_NULL} THEN NULL"
        f" WHEN {_SLOT_EMPTY} THEN ''"
        f" WHEN {_SLOT_BLANK} THEN (ARRAY[{', '.join(_BLANKS)}])[1 + get_byte(r.h, 32) % {len(_BLANKS)}]"
        f" WHEN 58 THEN CASE WHEN r.g >= 8 THEN {_kc_uuid('r.id - 8')} ELSE {_HASH_UUID} END"
        f" WHEN 73 THEN CASE WHEN r.cyc % 2 = 0 AND r.g >= 23 THEN {_kc_uuid('r.id - 23')} ELSE {_HASH_UUID} END"
        f" WHEN 88 THEN CASE WHEN r.cyc % 4 = 0 AND r.g >= 38 THEN {_kc_uuid('r.id - 38')} ELSE {_HASH_UUID} END"
        f" WHEN {_SLOT_LEADER} THEN {_kc_uuid('r.id')}"
        f" ELSE {_HASH_UUID} END"
    )


def _unicode_or(unicode_values: tuple[str, ...], normal: str) -> str:
    return f"CASE WHEN r.s % 25 = 12 THEN {_pick(unicode_values, 32)} ELSE {normal} END"


def _accepted_tos() -> str:
    dst = "ARRAY[" + ", ".join(f"'{t}'::timestamp" for t in DST_TIMESTAMPS) + "]"
    normal = (
        "timestamp '2021-01-01 00:00:00'"
        " + ((get_byte(r.h, 36)::bigint * 16777216 + get_byte(r.h, 37) * 65536"
        " + get_byte(r.h, 38) * 256 + get_byte(r.h, 39)) % 94608000) * interval '1 second'"
        " + CASE WHEN get_byte(r.h, 22) % 3 = 0 THEN interval '0'"
        " ELSE (get_byte(r.h, 34) * 256 + get_byte(r.h, 35)) * 15 * interval '1 microsecond' END"
    )
    return (
        f"CASE WHEN r.s = {_SLOT_ALL_NULL} THEN NULL"
        f" WHEN (r.g + :off) % 50 = 19 THEN ({dst})[1 + get_byte(r.h, 32) % {len(DST_TIMESTAMPS)}]"
        f" WHEN get_byte(r.h, 22) < 20 THEN NULL ELSE {normal} END"
    )


def insert_sql() -> str:
    """The INSERT of `:n` rows from id `:first_id` for seed `:seed_txt` at offset `:off` (seed_offset)."""
    first, last = _pick(_FIRST, 30), _pick(_LAST, 31)
    cols = {
        "id": "r.id",
        "keycloak_user_id": _keycloak_id(),
        "language": _unicode_or(_UNICODE_LANGUAGES, _nullable(
            f"CASE WHEN get_byte(r.h, 0) < 25 THEN NULL ELSE {_pick(_LANGUAGES, 1)} END")),
        "agent": _unicode_or(_UNICODE_AGENTS, _nullable(
            f"CASE WHEN get_byte(r.h, 2) < 20 THEN NULL ELSE {_pick(_AGENTS, 3)} END")),
        "max_iterations": _nullable(
            "(ARRAY[NULL, 100, 250, 500, 0, 2147483647, 30, NULL]::int[])[1 + get_byte(r.h, 4) % 8]"),
        "security_analyzer": _nullable("(ARRAY[NULL, 'llm', 'invariant', '', NULL]::text[])[1 + get_byte(r.h, 5) % 5]"),
        "confirmation_mode": _nullable("(ARRAY[NULL, true, false, false]::boolean[])[1 + get_byte(r.h, 6) % 4]"),
        "llm_model": _nullable(f"CASE WHEN get_byte(r.h, 7) < 30 THEN NULL ELSE {_pick(_MODELS, 8)} END"),
        "llm_api_key": _secret(0, 9, 38),
        "llm_api_key_for_byor": _secret(1, 10, 218),
        "llm_base_url": _nullable(
            "(ARRAY[NULL, NULL, NULL, 'https://llm-proxy.app.all-hands.dev/', 'http://localhost:11434', "
            "'https://api.openai.com/v1']::text[])[1 + get_byte(r.h, 11) % 6]"),
        "remote_runtime_resource_factor": _nullable("(ARRAY[NULL, 1, 1, 2, 4, 8]::int[])[1 + get_byte(r.h, 12) % 6]"),
        "enable_default_condenser": "get_byte(r.h, 13) % 5 <> 0",
        "condenser_max_size": _nullable("(ARRAY[NULL, 120, 40, NULL]::int[])[1 + get_byte(r.h, 14) % 4]"),
        "user_consents_to_analytics": _nullable("(ARRAY[NULL, true, false]::boolean[])[1 + get_byte(r.h, 15) % 3]"),
        "billing_margin": _float(4, 0, "(ARRAY[NULL, 1.0, 1.25, 2.0, NULL]::float8[])[1 + get_byte(r.h, 16) % 5]"),
        "enable_sound_notifications": _nullable(
            "(ARRAY[NULL, true, false, false]::boolean[])[1 + get_byte(r.h, 17) % 4]"),
        "enable_proactive_conversation_starters": "get_byte(r.h, 18) % 4 <> 0",
        "sandbox_base_container_image": _nullable(
            "(ARRAY[NULL, NULL, 'nikolaik/python-nodejs:python3.12-nodejs22', 'ubuntu:24.04', "
            "'ghcr.io/acme/sandbox:2025.06']::text[])[1 + get_byte(r.h, 19) % 5]"),
        "sandbox_runtime_container_image": _nullable(
            "(ARRAY[NULL, NULL, NULL, 'ghcr.io/all-hands-ai/runtime:0.39-nikolaik']::text[])"
            "[1 + get_byte(r.h, 20) % 4]"),
        "user_version": "get_byte(r.h, 21) % 6",
        "accepted_tos": _accepted_tos(),
        "mcp_config": _mcp_config(),
        "search_api_key": _secret(2, 24, 205),
        "sandbox_api_key": _secret(3, 25, 154),
        "max_budget_per_task": _float(
            14, 2, "(ARRAY[NULL, NULL, NULL, 5.0, 10.0, 25.5]::float8[])[1 + get_byte(r.h, 26) % 6]"),
        "enable_solvability_analysis": _nullable("(ARRAY[NULL, true, false]::boolean[])[1 + get_byte(r.h, 27) % 3]"),
        "email": _unicode_or(_UNICODE_EMAILS, _nullable(
            f"CASE WHEN get_byte(r.h, 28) < 15 THEN NULL"
            f" WHEN get_byte(r.h, 28) < 40 THEN initcap({first}) || '.' || initcap({last}) || r.id || '@Example.COM'"
            f" ELSE {first} || r.id || '@' || (ARRAY['example.com', 'example.org', 'mail.example.net'])"
            f"[1 + get_byte(r.h, 29) % 3] END")),
        "email_verified": _nullable("(ARRAY[NULL, true, true, false]::boolean[])[1 + get_byte(r.h, 29) % 4]"),
        "git_user_name": _unicode_or(_UNICODE_NAMES, _nullable(
            f"CASE WHEN get_byte(r.h, 40) < 60 THEN NULL ELSE initcap({first}) || ' ' || initcap({last}) END")),
        "git_user_email": _unicode_or(_UNICODE_EMAILS, _nullable(
            f"CASE WHEN get_byte(r.h, 41) < 60 THEN NULL"
            f" ELSE {first} || '.' || {last} || '@users.noreply.example.com' END")),
    }
    select_list = ",\n       ".join(cols.values())
    return f"""
INSERT INTO user_settings ({", ".join(cols)})
SELECT {select_list}
FROM (
    SELECT a.g, a.id, a.h, sha512(a.h) AS h2,
           (a.g + :off) % 100 AS s, (a.g + :off) / 100 AS cyc, ((a.g + :off) / 20) % 5 AS cyc5
    FROM (
        SELECT g, :first_id + g AS id,
               sha512(convert_to(:seed_txt || '/' || (:first_id + g)::text, 'UTF8')) AS h
        FROM generate_series(0::bigint, :n - 1) AS g
        OFFSET 0
    ) AS a
    OFFSET 0
) AS r
"""


def seed_offset(seed: int) -> int:
    """Where in the 100-row pattern a seed starts (0-99), so different seeds place kinds differently."""
    return int.from_bytes(hashlib.sha256(f"orgmig-seed/{seed}".encode()).digest()[:4], "big") % 100
