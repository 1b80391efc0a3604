-- Repeatable migration (see docs/ARCHITECTURE.md, "Schema evolution"). The R files are applied
-- in name order, after the versioned ones, whenever any of them changed. Edit in place; every
-- statement must be safe to run again (CREATE OR REPLACE; DROP FUNCTION IF EXISTS first when a
-- signature or return type changes). Tables, types, indexes, triggers, policies and grants
-- belong in new versioned files.
--
-- Validation: the single source of truth for the Swift library, the CLI and SQL callers.
-- Two forms side by side: check_spec names the first broken rule, spec_ok only says whether a
-- spec keeps all of them (ValidationAgreementTests requires them to agree).

-- What validation reads from the database, fetched once per batch: the settings and the
-- provider/model/route registry, as one jsonb document.
CREATE OR REPLACE FUNCTION sluice.validation_context() RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, sluice AS $$
BEGIN
    RETURN jsonb_build_object(
        'settings', (SELECT to_jsonb(s) FROM sluice.settings s),
        'providers', coalesce((SELECT jsonb_object_agg(p.name, jsonb_build_object(
                         'kind', p.kind,
                         'models', coalesce((SELECT jsonb_object_agg(m.model, true) FROM sluice.models m
                                              WHERE m.provider = p.name), '{}'::jsonb)))
                       FROM sluice.providers p), '{}'::jsonb),
        -- Each route with whether its targets mix the OpenAI and Anthropic wire formats (then
        -- its jobs' requests must be translatable: sluice.route_request_problem).
        'routes', coalesce((SELECT jsonb_object_agg(r.name, jsonb_build_object('mixed', (
                               SELECT count(DISTINCT p.kind) FILTER (WHERE p.kind IN ('openai', 'anthropic')) = 2
                                 FROM unnest(r.targets) AS t(target)
                                 JOIN sluice.providers p ON p.name = split_part(t.target, '/', 1))))
                              FROM sluice.routes r), '{}'::jsonb));
END
$$;

-- Messages that cannot be translated between the formats: tool calls and tool results, and
-- content parts other than text.
CREATE OR REPLACE FUNCTION sluice.untranslatable_messages_path() RETURNS jsonpath
LANGUAGE sql IMMUTABLE AS $$
    SELECT '$[*] ? (@.role == "tool" || @.role == "function" || exists(@.tool_calls)
                    || (@.content.type() == "array"
                        && exists(@.content[*] ? (!(@.type() == "object") || !(@."type" == "text")))))'::jsonpath
$$;

-- The rule of route_request_problem as one boolean expression without a subquery, so that
-- spec_ok (and this function inside it) is inlined: true when nothing needs translating that
-- cannot be.
CREATE OR REPLACE FUNCTION sluice.route_request_ok(req jsonb, route jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN coalesce(route ->> 'mixed', 'false') <> 'true' OR coalesce(jsonb_typeof(req), 'null') <> 'object' THEN true
        WHEN req - ARRAY['messages', 'system', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'stop',
                         'stop_sequences', 'tools', 'tool_choice', 'stream', 'model'] <> '{}'::jsonb THEN false
        WHEN jsonb_path_exists(req -> 'messages', sluice.untranslatable_messages_path()) THEN false
        WHEN jsonb_typeof(req -> 'system') = 'array'
             AND jsonb_path_exists(req -> 'system', '$[*] ? (!(@.type() == "object") || !(@."type" == "text"))') THEN false
        WHEN jsonb_typeof(req -> 'tools') = 'array'
             AND jsonb_path_exists(req -> 'tools',
                     '$[*] ? (!(@.type() == "object") || !(@.function.name.type() == "string" || @.input_schema.type() == "object"))') THEN false
        ELSE true
    END
$$;

-- What in a route job's request cannot be translated between the OpenAI Chat Completions and
-- the Anthropic Messages formats, as a field path, when its route mixes both (route is the
-- route's entry of validation_context()); NULL when nothing is (or the route does not mix).
-- Translated: messages with text content (strings or text parts), system (a system message
-- or the system field), max_tokens / max_completion_tokens, temperature, top_p, stop /
-- stop_sequences, function tools and tool_choice. Not translated: tool calls and tool results
-- in the messages, images, audio, documents and every other field.
CREATE OR REPLACE FUNCTION sluice.route_request_problem(req jsonb, route jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN sluice.route_request_ok(req, route) THEN NULL
        WHEN req - ARRAY['messages', 'system', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'stop',
                         'stop_sequences', 'tools', 'tool_choice', 'stream', 'model'] <> '{}'::jsonb THEN
            (SELECT 'request.' || min(k)
               FROM jsonb_object_keys(req - ARRAY['messages', 'system', 'max_tokens', 'max_completion_tokens', 'temperature',
                                                  'top_p', 'stop', 'stop_sequences', 'tools', 'tool_choice', 'stream',
                                                  'model']) AS k)
        WHEN jsonb_path_exists(req -> 'messages', sluice.untranslatable_messages_path()) THEN 'request.messages'
        WHEN jsonb_typeof(req -> 'system') = 'array'
             AND jsonb_path_exists(req -> 'system', '$[*] ? (!(@.type() == "object") || !(@."type" == "text"))') THEN 'request.system'
        ELSE 'request.tools'
    END
$$;


-- An integer in [lo, hi] (5.0 counts as 5; 5.5 does not).
CREATE OR REPLACE FUNCTION sluice.json_int_in(v jsonb, lo numeric, hi numeric) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'number' THEN v::numeric = trunc(v::numeric) AND v::numeric BETWEEN lo AND hi
                ELSE false END
$$;

-- ^[a-z0-9][a-z0-9_-]{0,62}$, the CHECK of tenants.id (the bounded repetition made the regex
-- 2.5x slower than an unbounded one plus a length test).
CREATE OR REPLACE FUNCTION sluice.tenant_id_ok(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(length(t) <= 63 AND t ~ '^[a-z0-9][a-z0-9_-]*$', false)
$$;

-- An RFC 3339 timestamp with a time zone that PostgreSQL accepts as a timestamptz: fields in
-- range, a day that exists in its month, an offset of at most 15:59. (A regex alone let
-- 2026-13-45 through to the insert, which failed with an untyped cast error.)
CREATE OR REPLACE FUNCTION sluice.timestamp_ok(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN t ~ '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-](0\d|1[0-5])(:?[0-5]\d)?)$'
        THEN substr(t, 1, 4)::integer >= 1
             AND substr(t, 9, 2)::integer <= extract(day FROM make_date(greatest(substr(t, 1, 4)::integer, 1),
                                                                          substr(t, 6, 2)::integer, 1)
                                                              + interval '1 month' - interval '1 day')
        ELSE false END
$$;

-- What is wrong with a webhook URL: 'format', 'scheme', or NULL when nothing is.
CREATE OR REPLACE FUNCTION sluice.webhook_url_problem(u text, allow_http boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN length(u) > 2048 OR NOT u ~* '^[a-z][a-z0-9+.-]*://[^/?#\s@]+(:[0-9]{1,5})?([/?#]\S*)?$' THEN 'format'
        WHEN NOT (u ~* '^https://' OR (allow_http AND u ~* '^http://')) THEN 'scheme'
    END
$$;

-- A W3C trace context header value (version ff and all-zero ids are invalid).
CREATE OR REPLACE FUNCTION sluice.traceparent_ok(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN t ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'
                THEN NOT (t ~ '^ff-' OR t ~ '^..-0{32}-' OR t ~ '-0{16}-..$') ELSE false END
$$;

-- Selects the messages that break a rule of their provider kind (Anthropic Messages, or
-- OpenAI Chat Completions, also used for echo). Every comparison is preceded by a type test:
-- in jsonpath a string compared with a number is "unknown", and an unknown filter selects
-- nothing (the unguarded form once let {"role": 5} through). == comparisons, not like_regex
-- (2x slower).
CREATE OR REPLACE FUNCTION sluice.bad_messages_path(anthropic boolean) RETURNS jsonpath
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN anthropic THEN
        '$[*] ? (!(@.type() == "object") || !(@.role.type() == "string") || !(@.role == "user" || @.role == "assistant")
                 || !(@.content.type() == "string"
                      || (@.content.type() == "array"
                          && !exists(@.content[*] ? (!(@.type() == "object") || !(@."type".type() == "string")
                                                    || !(@."type" == "text" || @."type" == "image" || @."type" == "document"
                                                         || @."type" == "tool_use" || @."type" == "tool_result" || @."type" == "thinking"
                                                         || @."type" == "redacted_thinking" || @."type" == "search_result"))))))'::jsonpath
    ELSE
        '$[*] ? (!(@.type() == "object") || !(@.role.type() == "string")
                 || !(@.role == "system" || @.role == "developer" || @.role == "user" || @.role == "assistant" || @.role == "tool" || @.role == "function")
                 || !(@.content.type() == "string"
                      || (@.content.type() == "array"
                          && !exists(@.content[*] ? (!(@.type() == "object") || !(@."type".type() == "string")
                                                    || !(@."type" == "text" || @."type" == "image_url" || @."type" == "input_audio"
                                                         || @."type" == "file" || @."type" == "refusal"))))
                      || (!(@.content.type() == "array") && @.role == "assistant" && exists(@.tool_calls))))'::jsonpath
    END
$$;

-- The first problem with one job spec (the JSON shape of `sluice enqueue --file` lines), or
-- NULL when it is valid. Field names are JSON paths into the spec, e.g. request.messages[2].role.
-- This function is the single definition of what a valid job is: the SQL API, the Swift
-- library and the CLI all reach it through sluice.enqueue_specs / sluice.spec_errors.
-- It avoids per-row queries (the registry comes in ctx) so a 10,000-job batch validates fast.
-- (No SET search_path clause: it would cost a GUC save/restore per row. Every name inside is
-- schema-qualified or built in.)
CREATE OR REPLACE FUNCTION sluice.check_spec(spec jsonb, ctx jsonb DEFAULT sluice.validation_context()) RETURNS sluice.spec_error
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s jsonb := ctx -> 'settings';
    max_payload bigint := (ctx #>> '{settings,max_payload_bytes}')::bigint;
    max_tokens bigint := (ctx #>> '{settings,max_output_tokens}')::bigint;
    k text;
    v jsonb;
    kind text;
    known text;
    req jsonb;
    msg jsonb;
    part jsonb;
    i integer;
    j integer;
    n bigint;
    roles text[];
    part_types text[];
    extra jsonb;
BEGIN
    IF spec IS NULL OR jsonb_typeof(spec) <> 'object' THEN
        RETURN ('spec', 'object', 'each job must be a JSON object')::sluice.spec_error;
    END IF;
    extra := spec - ARRAY['tenant', 'lane', 'provider', 'model', 'route', 'request', 'max_output_tokens', 'run_at',
                          'max_attempts', 'timeout_ms', 'idempotency_key', 'webhook_url', 'metadata',
                          'traceparent', 'stream'];
    IF extra <> '{}'::jsonb THEN
        SELECT min(x) INTO k FROM jsonb_object_keys(extra) AS x;
        RETURN (k, 'unknown_field', format('unknown field "%s"', k))::sluice.spec_error;
    END IF;

    -- tenant
    v := spec -> 'tenant';
    IF v IS NULL OR jsonb_typeof(v) <> 'string' THEN
        RETURN ('tenant', 'required', 'tenant is required (a string)')::sluice.spec_error;
    END IF;
    IF NOT sluice.tenant_id_ok(v #>> '{}') THEN
        RETURN ('tenant', 'format', 'tenant must match ^[a-z0-9][a-z0-9_-]{0,62}$')::sluice.spec_error;
    END IF;

    -- lane
    v := spec -> 'lane';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null'
       AND (jsonb_typeof(v) <> 'string' OR (v #>> '{}') NOT IN ('interactive', 'high', 'normal', 'batch')) THEN
        RETURN ('lane', 'known', 'lane must be one of interactive, high, normal, batch')::sluice.spec_error;
    END IF;

    -- provider + model, or route
    IF spec ? 'route' AND jsonb_typeof(spec -> 'route') <> 'null' THEN
        IF spec ? 'provider' OR spec ? 'model' THEN
            RETURN ('route', 'exclusive', 'give either route or provider and model, not both')::sluice.spec_error;
        END IF;
        IF jsonb_typeof(spec -> 'route') <> 'string' OR NOT (ctx -> 'routes') ? (spec ->> 'route') THEN
            SELECT string_agg(x, ', ' ORDER BY x) INTO known FROM jsonb_object_keys(ctx -> 'routes') AS x;
            RETURN ('route', 'known', format('unknown route %s; known routes: %s',
                    spec -> 'route', coalesce(known, '(none)')))::sluice.spec_error;
        END IF;
        kind := 'route';
    ELSE
        v := spec -> 'provider';
        IF v IS NULL OR jsonb_typeof(v) <> 'string' THEN
            RETURN ('provider', 'required', 'provider is required (a string), or give a route')::sluice.spec_error;
        END IF;
        kind := ctx #>> ARRAY['providers', v #>> '{}', 'kind'];
        IF kind IS NULL THEN
            SELECT string_agg(x, ', ' ORDER BY x) INTO known FROM jsonb_object_keys(ctx -> 'providers') AS x;
            RETURN ('provider', 'known', format('unknown provider %s; known providers: %s', v, coalesce(known, '(none)')))::sluice.spec_error;
        END IF;
        v := spec -> 'model';
        IF v IS NULL OR jsonb_typeof(v) <> 'string' THEN
            RETURN ('model', 'required', 'model is required (a string)')::sluice.spec_error;
        END IF;
        IF NOT (ctx #> ARRAY['providers', spec ->> 'provider', 'models']) ? (v #>> '{}') THEN
            SELECT string_agg(x, ', ' ORDER BY x) INTO known
              FROM (SELECT x FROM jsonb_object_keys(ctx #> ARRAY['providers', spec ->> 'provider', 'models']) AS x
                     ORDER BY x LIMIT 50) m;
            RETURN ('model', 'known', format('unknown model %s for provider %s; known models: %s',
                    v, spec ->> 'provider', coalesce(known, '(none)')))::sluice.spec_error;
        END IF;
    END IF;

    -- request
    req := spec -> 'request';
    IF req IS NULL OR jsonb_typeof(req) <> 'object' THEN
        RETURN ('request', 'object', 'request is required (a JSON object shaped for the provider)')::sluice.spec_error;
    END IF;
    -- The text form is at most ~6x the binary size (escapes), so a request whose binary form is
    -- well under the limit is not serialised just to be measured.
    n := CASE WHEN pg_column_size(req)::bigint * 8 > max_payload THEN octet_length(req::text) ELSE 0 END;
    IF n > max_payload THEN
        RETURN ('request', 'max_size', format('request is %s bytes; the limit is %s', n, max_payload))::sluice.spec_error;
    END IF;
    IF kind = 'route' THEN
        -- Either wire format (the worker translates it for each target's provider).
        v := req -> 'messages';
        IF v IS NULL OR jsonb_typeof(v) <> 'array' THEN
            RETURN ('request.messages', 'required', 'request.messages must be an array of messages')::sluice.spec_error;
        END IF;
        IF jsonb_array_length(v) = 0 THEN
            RETURN ('request.messages', 'non_empty', 'request.messages must not be empty')::sluice.spec_error;
        END IF;
        IF jsonb_path_exists(v, sluice.bad_messages_path(true)) AND jsonb_path_exists(v, sluice.bad_messages_path(false)) THEN
            RETURN ('request.messages', 'format',
                    'a route job''s messages must be valid in the OpenAI Chat Completions or the Anthropic Messages format')::sluice.spec_error;
        END IF;
        k := sluice.route_request_problem(req, ctx #> ARRAY['routes', spec ->> 'route']);
        IF k IS NOT NULL THEN
            RETURN (k, 'translatable', format('%s cannot be translated between the OpenAI and Anthropic formats, and route %s has '
                    'targets of both (tool calls and results, images and provider-specific fields are not translated): use a '
                    'route of one format', k, spec ->> 'route'))::sluice.spec_error;
        END IF;
    ELSE
        v := req -> 'messages';
        IF v IS NULL OR jsonb_typeof(v) <> 'array' THEN
            RETURN ('request.messages', 'required', 'request.messages must be an array of messages')::sluice.spec_error;
        END IF;
        IF jsonb_array_length(v) = 0 THEN
            RETURN ('request.messages', 'non_empty', 'request.messages must not be empty')::sluice.spec_error;
        END IF;
        -- Fast path: one jsonpath test over all messages; walk them only to name a bad one.
        IF jsonb_path_exists(v, sluice.bad_messages_path(kind = 'anthropic')) THEN
            IF kind = 'anthropic' THEN
                roles := ARRAY['user', 'assistant'];
                part_types := ARRAY['text', 'image', 'document', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking', 'search_result'];
            ELSE
                roles := ARRAY['system', 'developer', 'user', 'assistant', 'tool', 'function'];
                part_types := ARRAY['text', 'image_url', 'input_audio', 'file', 'refusal'];
            END IF;
            i := 0;
            FOR msg IN SELECT e FROM jsonb_array_elements(v) AS t(e) LOOP
                IF jsonb_typeof(msg) <> 'object' THEN
                    RETURN (format('request.messages[%s]', i), 'object', 'each message must be an object')::sluice.spec_error;
                END IF;
                IF jsonb_typeof(msg -> 'role') IS DISTINCT FROM 'string' OR NOT (msg ->> 'role') = ANY (roles) THEN
                    RETURN (format('request.messages[%s].role', i), 'known',
                            format('role must be one of %s', array_to_string(roles, ', ')))::sluice.spec_error;
                END IF;
                CASE jsonb_typeof(msg -> 'content')
                    WHEN 'string' THEN NULL;
                    WHEN 'array' THEN
                        j := 0;
                        FOR part IN SELECT e FROM jsonb_array_elements(msg -> 'content') AS t(e) LOOP
                            IF jsonb_typeof(part) <> 'object' OR jsonb_typeof(part -> 'type') IS DISTINCT FROM 'string'
                               OR NOT (part ->> 'type') = ANY (part_types) THEN
                                RETURN (format('request.messages[%s].content[%s].type', i, j), 'known',
                                        format('content part type must be one of %s', array_to_string(part_types, ', ')))::sluice.spec_error;
                            END IF;
                            j := j + 1;
                        END LOOP;
                    ELSE
                        -- OpenAI allows a null content on assistant messages that carry tool calls.
                        IF NOT (kind <> 'anthropic' AND msg ->> 'role' = 'assistant' AND msg ? 'tool_calls') THEN
                            RETURN (format('request.messages[%s].content', i), 'type',
                                    'content must be a string or an array of content parts')::sluice.spec_error;
                        END IF;
                END CASE;
                i := i + 1;
            END LOOP;
        END IF;
        IF kind = 'anthropic' AND req -> 'system' IS NOT NULL
           AND jsonb_typeof(req -> 'system') NOT IN ('string', 'array') THEN
            RETURN ('request.system', 'type', 'system must be a string or an array of text blocks')::sluice.spec_error;
        END IF;
    END IF;

    -- output token limits
    FOREACH k IN ARRAY ARRAY['max_tokens', 'max_completion_tokens'] LOOP
        v := req -> k;
        IF v IS NOT NULL AND NOT sluice.json_int_in(v, 1, max_tokens) THEN
            RETURN ('request.' || k, 'range', format('%s must be an integer from 1 to %s', k, max_tokens))::sluice.spec_error;
        END IF;
    END LOOP;
    v := spec -> 'max_output_tokens';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND NOT sluice.json_int_in(v, 1, max_tokens) THEN
        RETURN ('max_output_tokens', 'range', format('max_output_tokens must be an integer from 1 to %s', max_tokens))::sluice.spec_error;
    END IF;
    IF kind = 'anthropic' AND req -> 'max_tokens' IS NULL
       AND (spec -> 'max_output_tokens' IS NULL OR jsonb_typeof(spec -> 'max_output_tokens') = 'null') THEN
        RETURN ('max_output_tokens', 'required', 'Anthropic requests need max_output_tokens (or request.max_tokens)')::sluice.spec_error;
    END IF;

    -- scheduling and retry options
    v := spec -> 'run_at';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND (jsonb_typeof(v) <> 'string' OR NOT sluice.timestamp_ok(v #>> '{}')) THEN
        RETURN ('run_at', 'format', 'run_at must be an RFC 3339 timestamp with a time zone, e.g. 2026-01-02T03:04:05Z')::sluice.spec_error;
    END IF;
    v := spec -> 'max_attempts';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND NOT sluice.json_int_in(v, 1, (s ->> 'max_attempts_cap')::numeric) THEN
        RETURN ('max_attempts', 'range', format('max_attempts must be an integer from 1 to %s', s ->> 'max_attempts_cap'))::sluice.spec_error;
    END IF;
    v := spec -> 'timeout_ms';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND NOT sluice.json_int_in(v, 1000, 86400000) THEN
        RETURN ('timeout_ms', 'range', 'timeout_ms must be an integer from 1000 to 86400000')::sluice.spec_error;
    END IF;
    v := spec -> 'idempotency_key';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND (jsonb_typeof(v) <> 'string'
        OR length(v #>> '{}') < 1 OR length(v #>> '{}') > (s ->> 'max_idempotency_key')::integer) THEN
        RETURN ('idempotency_key', 'length', format('idempotency_key must be a string of 1 to %s characters', s ->> 'max_idempotency_key'))::sluice.spec_error;
    END IF;
    v := spec -> 'webhook_url';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' THEN
        IF jsonb_typeof(v) <> 'string' OR sluice.webhook_url_problem(v #>> '{}', false) = 'format' THEN
            RETURN ('webhook_url', 'format', 'webhook_url must be an absolute URL of at most 2048 characters')::sluice.spec_error;
        END IF;
        IF sluice.webhook_url_problem(v #>> '{}', (s ->> 'allow_http_webhooks')::boolean) IS NOT NULL THEN
            RETURN ('webhook_url', 'scheme', CASE WHEN (s ->> 'allow_http_webhooks')::boolean
                    THEN 'webhook_url must use https or http'
                    ELSE 'webhook_url must use https (http is disabled by configuration)' END)::sluice.spec_error;
        END IF;
    END IF;
    v := spec -> 'metadata';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND jsonb_typeof(v) <> 'object' THEN
        RETURN ('metadata', 'object', 'metadata must be a JSON object')::sluice.spec_error;
    END IF;
    v := spec -> 'traceparent';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND (jsonb_typeof(v) <> 'string' OR NOT sluice.traceparent_ok(v #>> '{}')) THEN
        RETURN ('traceparent', 'format', 'traceparent must be a W3C trace context header value (00-<32 hex>-<16 hex>-<2 hex>)')::sluice.spec_error;
    END IF;
    v := spec -> 'stream';
    IF v IS NOT NULL AND jsonb_typeof(v) NOT IN ('boolean', 'null') THEN
        RETURN ('stream', 'type', 'stream must be true or false')::sluice.spec_error;
    END IF;
    RETURN NULL;
END
$$;

-- The rules of check_spec as one boolean expression: true when the spec keeps all of them.
-- This is the happy path of validation: inlined into the caller's query it costs ~4 µs per
-- spec of a 10,000-job batch where the PL/pgSQL walk costs ~7 µs (a third of that is the
-- messages jsonpath). check_spec runs only for the specs this rejects, to name the broken rule.
-- The two forms must agree; ValidationAgreementTests checks that they do, spec by spec, over
-- generated valid and broken specs. (Should this reject a spec that check_spec accepts, the spec
-- is accepted: check_spec decides. STABLE, not IMMUTABLE: pg_column_size is stable, and an
-- IMMUTABLE SQL function whose body is not is never inlined.)
CREATE OR REPLACE FUNCTION sluice.spec_ok(spec jsonb, ctx jsonb) RETURNS boolean
LANGUAGE sql STABLE AS $$
    -- (Absent-or-null tests compare jsonb_typeof, not jsonb values: jsonb equality is slow. A
    -- missing key makes jsonb_typeof NULL: every test of it is in a coalesce.)
    SELECT CASE WHEN coalesce(jsonb_typeof(spec), 'null') <> 'object' THEN false ELSE
        spec - ARRAY['tenant', 'lane', 'provider', 'model', 'route', 'request', 'max_output_tokens', 'run_at',
                     'max_attempts', 'timeout_ms', 'idempotency_key', 'webhook_url', 'metadata',
                     'traceparent', 'stream'] = '{}'::jsonb
        AND CASE WHEN jsonb_typeof(spec -> 'tenant') = 'string' THEN sluice.tenant_id_ok(spec ->> 'tenant') ELSE false END
        AND CASE WHEN jsonb_typeof(spec -> 'lane') = 'string' THEN spec ->> 'lane' IN ('interactive', 'high', 'normal', 'batch')
                 ELSE coalesce(jsonb_typeof(spec -> 'lane'), 'null') = 'null' END
        -- provider + model, or route
        AND CASE WHEN coalesce(jsonb_typeof(spec -> 'route'), 'null') <> 'null' THEN
                NOT (spec ? 'provider' OR spec ? 'model')
                AND jsonb_typeof(spec -> 'route') = 'string' AND (ctx -> 'routes') ? (spec ->> 'route')
            WHEN jsonb_typeof(spec -> 'provider') = 'string' AND jsonb_typeof(spec -> 'model') = 'string' THEN
                coalesce((ctx #> ARRAY['providers', spec ->> 'provider', 'models']) ? (spec ->> 'model'), false)
            ELSE false END
        -- request: an object within the size limit, with valid messages unless a route decides
        AND CASE WHEN coalesce(jsonb_typeof(spec -> 'request'), 'null') <> 'object' THEN false
            WHEN pg_column_size(spec -> 'request')::bigint * 8 > (ctx #>> '{settings,max_payload_bytes}')::bigint
                 AND octet_length((spec -> 'request')::text) > (ctx #>> '{settings,max_payload_bytes}')::bigint THEN false
            WHEN coalesce(jsonb_typeof(spec -> 'route'), 'null') <> 'null' THEN
                CASE WHEN coalesce(jsonb_typeof(spec #> '{request,messages}'), 'null') <> 'array' THEN false
                     WHEN jsonb_array_length(spec #> '{request,messages}') = 0 THEN false
                     -- (the OpenAI rules first: the more common shape, so usually one test)
                     WHEN jsonb_path_exists(spec #> '{request,messages}', sluice.bad_messages_path(false))
                          AND jsonb_path_exists(spec #> '{request,messages}', sluice.bad_messages_path(true)) THEN false
                     ELSE sluice.route_request_ok(spec -> 'request', ctx #> ARRAY['routes', spec ->> 'route']) END
            WHEN coalesce(jsonb_typeof(spec #> '{request,messages}'), 'null') <> 'array' THEN false
            WHEN jsonb_array_length(spec #> '{request,messages}') = 0 THEN false
            WHEN ctx #>> ARRAY['providers', spec ->> 'provider', 'kind'] = 'anthropic' THEN
                NOT jsonb_path_exists(spec #> '{request,messages}', sluice.bad_messages_path(true))
                AND coalesce(jsonb_typeof(spec #> '{request,system}'), 'string') IN ('string', 'array')
            ELSE NOT jsonb_path_exists(spec #> '{request,messages}', sluice.bad_messages_path(false)) END
        -- output token limits
        AND CASE WHEN NOT (spec -> 'request' ?| ARRAY['max_tokens', 'max_completion_tokens']) THEN true
            ELSE CASE WHEN spec #> '{request,max_tokens}' IS NULL THEN true
                      ELSE sluice.json_int_in(spec #> '{request,max_tokens}', 1, (ctx #>> '{settings,max_output_tokens}')::numeric) END
             AND CASE WHEN spec #> '{request,max_completion_tokens}' IS NULL THEN true
                      ELSE sluice.json_int_in(spec #> '{request,max_completion_tokens}', 1, (ctx #>> '{settings,max_output_tokens}')::numeric) END
            END
        AND CASE WHEN coalesce(jsonb_typeof(spec -> 'max_output_tokens'), 'null') = 'null' THEN
                     spec #> '{request,max_tokens}' IS NOT NULL OR coalesce(jsonb_typeof(spec -> 'route'), 'null') <> 'null'
                     OR ctx #>> ARRAY['providers', spec ->> 'provider', 'kind'] <> 'anthropic'
                 ELSE sluice.json_int_in(spec -> 'max_output_tokens', 1, (ctx #>> '{settings,max_output_tokens}')::numeric) END
        -- scheduling, retries, delivery, tracing (usually all absent: one test then)
        AND CASE WHEN NOT (spec ?| ARRAY['run_at', 'max_attempts', 'timeout_ms', 'idempotency_key', 'webhook_url', 'metadata',
                                          'traceparent', 'stream']) THEN true ELSE
            CASE WHEN coalesce(jsonb_typeof(spec -> 'run_at'), 'null') = 'null' THEN true
                 WHEN jsonb_typeof(spec -> 'run_at') = 'string' THEN sluice.timestamp_ok(spec ->> 'run_at') ELSE false END
            AND CASE WHEN coalesce(jsonb_typeof(spec -> 'max_attempts'), 'null') = 'null' THEN true
                     ELSE sluice.json_int_in(spec -> 'max_attempts', 1, (ctx #>> '{settings,max_attempts_cap}')::numeric) END
            AND CASE WHEN coalesce(jsonb_typeof(spec -> 'timeout_ms'), 'null') = 'null' THEN true
                     ELSE sluice.json_int_in(spec -> 'timeout_ms', 1000, 86400000) END
            AND CASE WHEN coalesce(jsonb_typeof(spec -> 'idempotency_key'), 'null') = 'null' THEN true
                     WHEN jsonb_typeof(spec -> 'idempotency_key') = 'string' THEN
                         length(spec ->> 'idempotency_key') BETWEEN 1 AND (ctx #>> '{settings,max_idempotency_key}')::integer
                     ELSE false END
            AND CASE WHEN coalesce(jsonb_typeof(spec -> 'webhook_url'), 'null') = 'null' THEN true
                     WHEN jsonb_typeof(spec -> 'webhook_url') = 'string' THEN
                         sluice.webhook_url_problem(spec ->> 'webhook_url', (ctx #>> '{settings,allow_http_webhooks}')::boolean) IS NULL
                     ELSE false END
            AND coalesce(jsonb_typeof(spec -> 'metadata'), 'null') IN ('null', 'object')
            AND CASE WHEN coalesce(jsonb_typeof(spec -> 'traceparent'), 'null') = 'null' THEN true
                     WHEN jsonb_typeof(spec -> 'traceparent') = 'string' THEN sluice.traceparent_ok(spec ->> 'traceparent')
                     ELSE false END
            AND coalesce(jsonb_typeof(spec -> 'stream'), 'null') IN ('null', 'boolean')
            END
    END
$$;

-- Every invalid spec of a batch with its index (0-based), field, rule and message.
CREATE OR REPLACE FUNCTION sluice.spec_errors(specs jsonb)
RETURNS TABLE (idx integer, field text, rule text, message text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, sluice SET jit = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    ctx jsonb := sluice.validation_context();
BEGIN
    -- spec_ok clears the valid specs cheaply; check_spec names the problem of the others
    -- (OFFSET 0: evaluated once per spec, not once per output column).
    RETURN QUERY
    SELECT (t.ord - 1)::integer, (c.e).field, (c.e).rule, (c.e).message
      FROM jsonb_array_elements(specs) WITH ORDINALITY AS t(spec, ord)
      CROSS JOIN LATERAL (SELECT sluice.check_spec(t.spec, ctx) AS e OFFSET 0) c
     WHERE NOT coalesce(sluice.spec_ok(t.spec, ctx), false)
       AND c.e IS NOT NULL
     ORDER BY t.ord;
END
$$;
