-- The submit API: validation (the single source of truth for both the Swift library and
-- SQL callers), admission control, enqueue (single and batch, idempotent), status, cancel,
-- and row-level security for roles bound to one tenant.
--
-- Errors are raised with SQLSTATE class SL and carry the offending field in COLUMN and the
-- rule in CONSTRAINT, so every client (libpq, JDBC, psycopg, …) gets a typed error:
--   SL001 invalid_spec     SL002 queue_full      SL003 tenant_paused
--   SL004 budget_exhausted SL005 not_found       SL006 not_permitted

-- ---------------------------------------------------------------------------------------
-- Roles and tenant binding
-- ---------------------------------------------------------------------------------------
DO $$
BEGIN
    -- Roles are cluster-wide: several databases (tests run in parallel) may race here.
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sluice_tenant') THEN
        CREATE ROLE sluice_tenant NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- The tenant bound to the session's role, or NULL for operator/service roles. The role is the
-- one set with SET ROLE, else the login role: unlike current_user, these stay the caller's
-- inside the SECURITY DEFINER functions below (enqueue_specs, cancel: see acting_tenant), which
-- is how they know whom they act for. Outside such functions it is current_user.
--
-- The small helpers of the enqueue path are PL/pgSQL rather than SQL functions: PL/pgSQL keeps
-- a statement's plan for the session, while a non-inlined SQL function is planned again on
-- every call (0.1-1.5 ms each, most of a single enqueue).
CREATE FUNCTION sluice.current_tenant() RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT r.tenant FROM sluice.tenant_roles r
             WHERE r.role_name = coalesce(nullif(current_setting('role'), 'none'), session_user));
END
$$;

-- Whom a SECURITY DEFINER function acts for: the tenant bound to the session's role, or NULL
-- for operator and service roles. A member of sluice_tenant that is bound to no tenant (for
-- instance a tenant role that ran SET ROLE sluice_tenant) is refused: without this it would
-- count as an operator once row-level security no longer applies.
CREATE FUNCTION sluice.acting_tenant() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, sluice AS $$
DECLARE
    r name := coalesce(nullif(current_setting('role'), 'none'), session_user);
    t text;
BEGIN
    SELECT b.tenant INTO t FROM sluice.tenant_roles b WHERE b.role_name = r;
    IF t IS NULL AND (r = 'sluice_tenant'
                      OR EXISTS (SELECT 1 FROM pg_auth_members m
                                   JOIN pg_roles g ON g.oid = m.roleid AND g.rolname = 'sluice_tenant'
                                   JOIN pg_roles u ON u.oid = m.member AND u.rolname = r)) THEN
        RAISE EXCEPTION 'role % is a member of sluice_tenant but bound to no tenant', r
            USING ERRCODE = 'SL006', COLUMN = 'tenant', CONSTRAINT = 'permitted';
    END IF;
    RETURN t;
END
$$;

-- A tenant's queued jobs (committed and this transaction's own). Invoker rights: a role bound
-- to a tenant reads only its own tenant's counters (row-level security on
-- tenant_queue_depth), so for any other tenant it gets 0.
CREATE FUNCTION sluice.queue_depth(p_tenant text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(sum(d.queued), 0)::bigint FROM sluice.tenant_queue_depth d WHERE d.tenant = p_tenant);
END
$$;

-- ---------------------------------------------------------------------------------------
-- Validation
-- ---------------------------------------------------------------------------------------
CREATE TYPE sluice.spec_error AS (field text, rule text, message text);

-- What validation reads from the database, fetched once per batch: the settings and the
-- provider/model/route registry, as one jsonb document.
CREATE FUNCTION sluice.validation_context() RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, sluice AS $$
BEGIN
    RETURN jsonb_build_object(
        'settings', (SELECT to_jsonb(s) FROM sluice.settings s),
        'providers', coalesce((SELECT jsonb_object_agg(p.name, jsonb_build_object(
                         'kind', p.kind,
                         'models', coalesce((SELECT jsonb_object_agg(m.model, true) FROM sluice.models m
                                              WHERE m.provider = p.name), '{}'::jsonb)))
                       FROM sluice.providers p), '{}'::jsonb),
        'routes', coalesce((SELECT jsonb_object_agg(r.name, true) FROM sluice.routes r), '{}'::jsonb));
END
$$;

-- Small rules shared by the two forms of validation below (check_spec, which names the first
-- broken rule, and spec_ok, which only says whether a spec keeps all of them). Each is one
-- SQL expression, inlined by the planner where it is used. Guards are CASEs, never AND, so a
-- cast is evaluated only after the type test before it (the planner may reorder AND terms).

-- An integer in [lo, hi] (5.0 counts as 5; 5.5 does not).
CREATE FUNCTION sluice.json_int_in(v jsonb, lo numeric, hi numeric) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'number' THEN v::numeric = trunc(v::numeric) AND v::numeric BETWEEN lo AND hi
                ELSE false END
$$;

-- ^[a-z0-9][a-z0-9_-]{0,62}$, the CHECK of tenants.id (the bounded repetition made the regex
-- 2.5x slower than an unbounded one plus a length test).
CREATE FUNCTION sluice.tenant_id_ok(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(length(t) <= 63 AND t ~ '^[a-z0-9][a-z0-9_-]*$', false)
$$;

-- An RFC 3339 timestamp with a time zone that PostgreSQL accepts as a timestamptz: fields in
-- range, a day that exists in its month, an offset of at most 15:59. (A regex alone let
-- 2026-13-45 through to the insert, which failed with an untyped cast error.)
CREATE FUNCTION sluice.timestamp_ok(t text) RETURNS boolean
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
CREATE FUNCTION sluice.webhook_url_problem(u text, allow_http boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN length(u) > 2048 OR NOT u ~* '^[a-z][a-z0-9+.-]*://[^/?#\s@]+(:[0-9]{1,5})?([/?#]\S*)?$' THEN 'format'
        WHEN NOT (u ~* '^https://' OR (allow_http AND u ~* '^http://')) THEN 'scheme'
    END
$$;

-- A W3C trace context header value (version ff and all-zero ids are invalid).
CREATE FUNCTION sluice.traceparent_ok(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN t ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'
                THEN NOT (t ~ '^ff-' OR t ~ '^..-0{32}-' OR t ~ '-0{16}-..$') ELSE false END
$$;

-- Selects the messages that break a rule of their provider kind (Anthropic Messages, or
-- OpenAI Chat Completions, also used for echo). Every comparison is preceded by a type test:
-- in jsonpath a string compared with a number is "unknown", and an unknown filter selects
-- nothing (the unguarded form once let {"role": 5} through). == comparisons, not like_regex
-- (2x slower).
CREATE FUNCTION sluice.bad_messages_path(anthropic boolean) RETURNS jsonpath
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
CREATE FUNCTION sluice.check_spec(spec jsonb, ctx jsonb DEFAULT sluice.validation_context()) RETURNS sluice.spec_error
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
    IF kind <> 'route' THEN
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
CREATE FUNCTION sluice.spec_ok(spec jsonb, ctx jsonb) RETURNS boolean
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
            WHEN coalesce(jsonb_typeof(spec -> 'route'), 'null') <> 'null' THEN true
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
CREATE FUNCTION sluice.spec_errors(specs jsonb)
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

-- Why a tenant may not enqueue more right now (hard budget spent), or NULL.
CREATE FUNCTION sluice.budget_block(p_tenant text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, sluice AS $$
BEGIN
    RETURN (SELECT CASE
        WHEN t.daily_token_budget_hard IS NOT NULL AND d.tokens >= t.daily_token_budget_hard
            THEN format('daily token budget of %s spent (%s used)', t.daily_token_budget_hard, d.tokens)
        WHEN t.monthly_token_budget_hard IS NOT NULL AND m.tokens >= t.monthly_token_budget_hard
            THEN format('monthly token budget of %s spent (%s used)', t.monthly_token_budget_hard, m.tokens)
        WHEN t.daily_usd_budget_hard IS NOT NULL AND d.cost >= t.daily_usd_budget_hard
            THEN format('daily budget of $%s spent ($%s used)', t.daily_usd_budget_hard, round(d.cost, 4))
        WHEN t.monthly_usd_budget_hard IS NOT NULL AND m.cost >= t.monthly_usd_budget_hard
            THEN format('monthly budget of $%s spent ($%s used)', t.monthly_usd_budget_hard, round(m.cost, 4))
    END
    FROM sluice.tenants t
    CROSS JOIN LATERAL (SELECT coalesce(sum(u.tokens), 0) AS tokens, coalesce(sum(u.cost_usd), 0) AS cost
                          FROM sluice.usage_daily u
                         WHERE u.tenant = t.id AND u.day = (now() AT TIME ZONE 'UTC')::date) d
    CROSS JOIN LATERAL (SELECT coalesce(sum(u.tokens), 0) AS tokens, coalesce(sum(u.cost_usd), 0) AS cost
                          FROM sluice.usage_daily u
                         WHERE u.tenant = t.id AND u.day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date) m
    WHERE t.id = p_tenant
      AND (t.daily_token_budget_hard IS NOT NULL OR t.monthly_token_budget_hard IS NOT NULL
           OR t.daily_usd_budget_hard IS NOT NULL OR t.monthly_usd_budget_hard IS NOT NULL));
END
$$;

-- ---------------------------------------------------------------------------------------
-- Enqueue
-- ---------------------------------------------------------------------------------------
-- The jobs rows of a batch of valid specs, in input order (idx is 0-based). Ids are UUIDv7
-- (RFC 9562 §6.2, method 3): id_prefix holds the batch's Unix millisecond, the version and 12
-- random bits, then a counter that starts at id_base (a random 62-bit value with the variant
-- bits) and counts the specs, so ids sort by creation and, within a batch, by index.
-- (sluice.uuid_v7() per row cost ~2 µs of each job.)
CREATE FUNCTION sluice.spec_rows(specs jsonb, id_prefix bytea, id_base bigint, default_attempts integer, default_timeout_ms integer)
RETURNS TABLE (idx integer, id uuid, tenant text, lane sluice.lane, provider text, model text, request jsonb,
               stream boolean, max_output_tokens integer, estimated_input_tokens integer, run_at timestamptz,
               max_attempts integer, timeout_ms integer, idempotency_key text, webhook_url text, metadata jsonb,
               traceparent text)
LANGUAGE sql STABLE AS $$
    SELECT (x.ord - 1)::integer,
           encode(id_prefix || int8send(id_base + x.ord), 'hex')::uuid,
           x.spec ->> 'tenant',
           coalesce(x.spec ->> 'lane', 'normal')::sluice.lane,
           coalesce(x.spec ->> 'provider', 'route'),
           coalesce(x.spec ->> 'model', x.spec ->> 'route'),
           x.spec -> 'request',
           coalesce((x.spec ->> 'stream')::boolean, true),
           -- (via numeric: 5.0 is a valid integer in JSON, not in integer's input syntax)
           coalesce((x.spec ->> 'max_output_tokens')::numeric, (x.spec #>> '{request,max_tokens}')::numeric,
                    (x.spec #>> '{request,max_completion_tokens}')::numeric)::integer,
           -- About 4 bytes per token; the stored size, not the text size (which would need the
           -- request serialised).
           (pg_column_size(x.spec -> 'request') + 3) / 4,
           coalesce((x.spec ->> 'run_at')::timestamptz, now()),
           coalesce((x.spec ->> 'max_attempts')::numeric::integer, default_attempts),
           coalesce((x.spec ->> 'timeout_ms')::numeric::integer, default_timeout_ms),
           x.spec ->> 'idempotency_key',
           x.spec ->> 'webhook_url',
           coalesce(nullif(x.spec -> 'metadata', 'null'::jsonb), '{}'::jsonb),
           x.spec ->> 'traceparent'
      FROM jsonb_array_elements(specs) WITH ORDINALITY AS x(spec, ord)
$$;

-- Validates, admits and inserts a batch of specs, all or nothing. Returns one row per input
-- spec (idx is 0-based) with the job id and whether it was created now (false: an existing
-- job with the same tenant + idempotency key, possibly one inserted concurrently).
--
-- SECURITY DEFINER: tenant roles have no INSERT privilege on jobs (a direct INSERT would skip
-- validation and admission); they enqueue through this function, which accepts only specs of
-- the caller's own tenant (sluice.acting_tenant()).
--
-- p_notify: wake workers with NOTIFY inside this transaction (the default). PostgreSQL
-- serialises the commits of notifying transactions (a database-wide lock held through the WAL
-- flush), so clients that enqueue at a high rate pass false and call sluice.notify_lanes()
-- after committing, coalescing many enqueues into one notification (the Swift client does).
CREATE FUNCTION sluice.enqueue_specs(specs jsonb, p_notify boolean DEFAULT true)
RETURNS TABLE (idx integer, id uuid, created boolean)
SECURITY DEFINER
-- force_generic_plan: with the validation context as a parameter, the plan cache judged custom
-- plans cheaper and re-planned spec_ok's large expression on every call (63 % of a single
-- enqueue's server time); a generic plan is planned once per session.
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    s sluice.settings;
    n integer;
    ctx jsonb;
    n_bad bigint;
    errs jsonb;
    first_err record;
    me text := sluice.acting_tenant();
    t record;
    depth bigint;
    reason text;
    g_tenant text[];
    g_lane text[];
    g_count bigint[];
    has_keys boolean;
    id_prefix bytea;
    id_base bigint;
    inserted bigint;
    v_idx integer[];
    v_id uuid[];
    v_inserted boolean[];
    v_tenant text[];
    v_key text[];
BEGIN
    SELECT * INTO s FROM sluice.settings;
    IF specs IS NULL OR jsonb_typeof(specs) <> 'array' THEN
        RAISE EXCEPTION 'jobs must be a JSON array of job specs'
            USING ERRCODE = 'SL001', COLUMN = 'jobs', CONSTRAINT = 'array';
    END IF;
    n := jsonb_array_length(specs);
    IF n > s.max_batch_size THEN
        RAISE EXCEPTION 'a batch holds at most % jobs (got %)', s.max_batch_size, n
            USING ERRCODE = 'SL001', COLUMN = 'jobs', CONSTRAINT = 'max_batch_size';
    END IF;
    IF n = 0 THEN
        RETURN;
    END IF;

    -- The fast form of the rules over the whole batch (see spec_errors); the walk that names
    -- problems runs only if some spec fails it.
    ctx := sluice.validation_context();
    SELECT count(*) FILTER (WHERE NOT coalesce(sluice.spec_ok(e.spec, ctx), false)) INTO n_bad
      FROM jsonb_array_elements(specs) AS e(spec);
    IF n_bad > 0 THEN
        SELECT jsonb_agg(jsonb_build_object('index', e.idx, 'field', e.field, 'rule', e.rule, 'message', e.message) ORDER BY e.idx)
          INTO errs FROM sluice.spec_errors(specs) e;
        IF errs IS NOT NULL THEN
            SELECT * INTO first_err FROM jsonb_to_record(errs -> 0) AS x(index integer, field text, rule text, message text);
            RAISE EXCEPTION '%', CASE WHEN n = 1 THEN format('%s: %s', first_err.field, first_err.message)
                                      ELSE format('job %s: %s: %s (%s invalid jobs in the batch)', first_err.index, first_err.field,
                                                  first_err.message, jsonb_array_length(errs)) END
                USING ERRCODE = 'SL001', COLUMN = first_err.field, CONSTRAINT = first_err.rule, DETAIL = errs::text;
        END IF;
    END IF;

    -- One pass over the valid specs: how many per tenant and lane, and whether any carries an
    -- idempotency key. Everything below works on these few groups, not on the specs.
    SELECT array_agg(x.tenant), array_agg(x.lane), array_agg(x.n), bool_or(x.keys)
      INTO g_tenant, g_lane, g_count, has_keys
      FROM (SELECT e.spec ->> 'tenant' AS tenant, coalesce(e.spec ->> 'lane', 'normal') AS lane, count(*) AS n,
                   bool_or(coalesce(jsonb_typeof(e.spec -> 'idempotency_key'), 'null') <> 'null') AS keys
              FROM jsonb_array_elements(specs) AS e(spec)
             GROUP BY 1, 2) x;

    -- A role bound to a tenant may only enqueue for that tenant.
    IF me IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(g_tenant) u(tenant) WHERE u.tenant <> me) THEN
        RAISE EXCEPTION 'this role may only enqueue jobs for tenant %', me
            USING ERRCODE = 'SL006', COLUMN = 'tenant', CONSTRAINT = 'permitted';
    END IF;

    -- Unknown tenants are created with default limits when settings allow it.
    SELECT min(u.tenant) INTO reason FROM unnest(g_tenant) u(tenant)
     WHERE NOT EXISTS (SELECT 1 FROM sluice.tenants tt WHERE tt.id = u.tenant);
    IF reason IS NOT NULL THEN
        IF NOT s.auto_create_tenants OR me IS NOT NULL THEN
            RAISE EXCEPTION 'unknown tenant %', reason USING ERRCODE = 'SL005', COLUMN = 'tenant', CONSTRAINT = 'exists';
        END IF;
        INSERT INTO sluice.tenants (id) SELECT DISTINCT u.tenant FROM unnest(g_tenant) u(tenant) ORDER BY 1
        ON CONFLICT DO NOTHING;
    END IF;

    -- Admission control, per tenant of the batch.
    FOR t IN
        SELECT tt.id, tt.paused, tt.max_queued_jobs, sum(u.n) AS incoming
          FROM unnest(g_tenant, g_count) AS u(tenant, n)
          JOIN sluice.tenants tt ON tt.id = u.tenant
         GROUP BY tt.id, tt.paused, tt.max_queued_jobs
         ORDER BY tt.id
    LOOP
        IF t.paused THEN
            RAISE EXCEPTION 'tenant % is paused', t.id
                USING ERRCODE = 'SL003', COLUMN = 'tenant', CONSTRAINT = 'tenant_paused';
        END IF;
        reason := sluice.budget_block(t.id);
        IF reason IS NOT NULL THEN
            RAISE EXCEPTION 'tenant %: %', t.id, reason
                USING ERRCODE = 'SL004', COLUMN = 'tenant', CONSTRAINT = 'budget_exhausted';
        END IF;
        -- Trigger-maintained counters (0001): 16 rows per tenant, not a count of the backlog.
        depth := sluice.queue_depth(t.id);
        IF depth + t.incoming > t.max_queued_jobs THEN
            RAISE EXCEPTION 'tenant % has % queued jobs; its limit is % (this batch adds %)',
                    t.id, depth, t.max_queued_jobs, t.incoming
                USING ERRCODE = 'SL002', COLUMN = 'tenant', CONSTRAINT = 'queue_full',
                      DETAIL = jsonb_build_object('tenant', t.id, 'depth', depth, 'limit', t.max_queued_jobs,
                                                  'incoming', t.incoming)::text;
        END IF;
    END LOOP;

    -- Ids (see spec_rows): the batch's millisecond, version 7 (0x7000) and 12 random bits; a
    -- counter from a random start whose top bits 10 are the variant.
    id_prefix := substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                 || int2send((28672 + floor(random() * 4096))::smallint);
    id_base := -9223372036854775807 + floor(random() * (4611686018427387904 - 2 * s.max_batch_size))::bigint;

    -- One statement inserts. ON CONFLICT (a speculative insertion per row, ~15 % of the insert)
    -- only when some spec carries an idempotency key; then which specs were inserted is kept in
    -- arrays built in one pass (so they line up). Without keys every spec was inserted (or the
    -- statement failed): a count is all there is to know.
    IF has_keys THEN
        WITH src AS MATERIALIZED (
            SELECT * FROM sluice.spec_rows(specs, id_prefix, id_base, s.default_max_attempts, s.default_timeout_ms)
        ), ins AS (
            INSERT INTO sluice.jobs AS j (id, tenant, lane, provider, model, request, stream, max_output_tokens,
                                          estimated_input_tokens, run_at, max_attempts, timeout_ms, idempotency_key,
                                          webhook_url, metadata, traceparent)
            SELECT r.id, r.tenant, r.lane, r.provider, r.model, r.request, r.stream, r.max_output_tokens,
                   r.estimated_input_tokens, r.run_at, r.max_attempts, r.timeout_ms, r.idempotency_key,
                   r.webhook_url, r.metadata, r.traceparent
              FROM src r
            ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING j.id
        )
        SELECT count(ins.id), array_agg(src.idx), array_agg(src.id), array_agg(ins.id IS NOT NULL),
               array_agg(src.tenant), array_agg(src.idempotency_key)
          INTO inserted, v_idx, v_id, v_inserted, v_tenant, v_key
          FROM src LEFT JOIN ins ON ins.id = src.id;
    ELSE
        INSERT INTO sluice.jobs AS j (id, tenant, lane, provider, model, request, stream, max_output_tokens,
                                      estimated_input_tokens, run_at, max_attempts, timeout_ms, idempotency_key,
                                      webhook_url, metadata, traceparent)
        SELECT r.id, r.tenant, r.lane, r.provider, r.model, r.request, r.stream, r.max_output_tokens,
               r.estimated_input_tokens, r.run_at, r.max_attempts, r.timeout_ms, r.idempotency_key,
               r.webhook_url, r.metadata, r.traceparent
          FROM sluice.spec_rows(specs, id_prefix, id_base, s.default_max_attempts, s.default_timeout_ms) r;
        GET DIAGNOSTICS inserted = ROW_COUNT;
    END IF;

    -- Wake workers: one notification per lane (PostgreSQL folds duplicates within a
    -- transaction, so a 10,000-job batch wakes each lane once).
    IF p_notify AND inserted > 0 THEN
        PERFORM pg_notify('sluice_jobs', l) FROM (SELECT DISTINCT u.lane FROM unnest(g_lane) u(lane)) d(l);
    END IF;

    IF NOT has_keys THEN
        RETURN QUERY SELECT i - 1, encode(id_prefix || int8send(id_base + i), 'hex')::uuid, true
                       FROM generate_series(1, n) i;
        RETURN;
    END IF;
    -- Specs that matched an existing idempotency key (including one committed concurrently
    -- while we waited on its key: these statements have a fresh snapshot) map to that job,
    -- unless this transaction cannot see it (a caller's REPEATABLE READ snapshot taken before
    -- that job committed): then the caller gets an error, never a missing id.
    IF EXISTS (SELECT 1 FROM unnest(v_inserted, v_tenant, v_key) AS u(inserted, tenant, key)
                WHERE NOT u.inserted
                  AND NOT EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.tenant = u.tenant AND j.idempotency_key = u.key)) THEN
        RAISE EXCEPTION 'an existing job with the same idempotency key is not visible to this transaction'
            USING ERRCODE = 'SL006', COLUMN = 'idempotency_key', CONSTRAINT = 'permitted';
    END IF;
    RETURN QUERY
    SELECT u.idx,
           CASE WHEN u.inserted THEN u.id
                ELSE (SELECT j.id FROM sluice.jobs j WHERE j.tenant = u.tenant AND j.idempotency_key = u.key) END,
           u.inserted
      FROM unnest(v_idx, v_id, v_inserted, v_tenant, v_key) AS u(idx, id, inserted, tenant, key)
     ORDER BY u.idx;
END
$$;

-- Wakes workers for the given lanes, in a transaction of its own with asynchronous commit:
-- a notification needs no durability, and this keeps the notify lock's hold short.
CREATE FUNCTION sluice.notify_lanes(lanes text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, sluice AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_notify('sluice_jobs', l) FROM unnest(lanes) AS l;
END
$$;

-- Enqueue one job. options: lane is an argument; the others (max_output_tokens, run_at,
-- max_attempts, timeout_ms, idempotency_key, webhook_url, metadata, traceparent, stream) come
-- from the options object. Returns the job id (the existing one for a repeated idempotency key).
CREATE FUNCTION sluice.enqueue(tenant text, lane text, provider text, model text, request jsonb,
                               options jsonb DEFAULT '{}')
RETURNS uuid
LANGUAGE sql SET search_path = pg_catalog, sluice AS $$
    SELECT e.id FROM sluice.enqueue_specs(jsonb_build_array(
        jsonb_strip_nulls(jsonb_build_object('tenant', tenant, 'lane', lane, 'provider', provider, 'model', model))
        || jsonb_build_object('request', request)
        || CASE WHEN options IS NULL OR jsonb_typeof(options) <> 'object' THEN
                jsonb_build_object('options_must_be_an_object', options)
           ELSE options END)) e
$$;

-- Enqueue a JSON array of specs; the ids come back in input order.
CREATE FUNCTION sluice.enqueue_batch(jobs jsonb) RETURNS SETOF uuid
LANGUAGE sql SET search_path = pg_catalog, sluice AS $$
    SELECT e.id FROM sluice.enqueue_specs(jobs) e ORDER BY e.idx
$$;

-- ---------------------------------------------------------------------------------------
-- Status and cancel
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION sluice.job_status(job uuid)
RETURNS TABLE (id uuid, tenant text, lane text, state text, attempt integer, max_attempts integer,
               run_at timestamptz, created_at timestamptz, started_at timestamptz, finished_at timestamptz,
               cancel_requested boolean, last_error_class text, last_error text)
LANGUAGE sql STABLE SET search_path = pg_catalog, sluice AS $$
    SELECT j.id, j.tenant, j.lane::text, j.state::text, j.attempt, j.max_attempts, j.run_at, j.created_at,
           j.started_at, j.finished_at, j.cancel_requested, j.last_error_class, j.last_error
      FROM sluice.jobs j WHERE j.id = job
$$;

-- Cancels a job: a queued job becomes cancelled at once; a running job gets cancel_requested
-- and its worker is told (NOTIFY sluice_cancel) to abort the call; a finished job is left as
-- it is. Returns the job's state afterwards. SECURITY DEFINER (tenant roles may not update jobs
-- directly); a role bound to a tenant can cancel only that tenant's jobs, and another tenant's
-- job is "not found" to it, as under row-level security.
CREATE FUNCTION sluice.cancel(job uuid) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sluice AS $$
DECLARE
    st sluice.job_state;
    me text := sluice.acting_tenant();
BEGIN
    SELECT j.state INTO st FROM sluice.jobs j WHERE j.id = job AND (me IS NULL OR j.tenant = me) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % not found', job USING ERRCODE = 'SL005', COLUMN = 'id', CONSTRAINT = 'exists';
    END IF;
    IF st = 'queued' THEN
        UPDATE sluice.jobs SET state = 'cancelled', finished_at = now(), cancel_requested = true,
                               last_error_class = 'cancelled', last_error = 'cancelled before it started'
         WHERE id = job;
        PERFORM pg_notify('sluice_done', job::text);
        RETURN 'cancelled';
    ELSIF st = 'running' THEN
        UPDATE sluice.jobs SET cancel_requested = true WHERE id = job;
        PERFORM pg_notify('sluice_cancel', job::text);
        RETURN 'running';
    END IF;
    RETURN st::text;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Views (security_invoker, so row-level security applies to whoever queries them)
-- ---------------------------------------------------------------------------------------
CREATE VIEW sluice.job_view WITH (security_invoker = true) AS
    SELECT j.id, j.tenant, j.lane::text AS lane, j.state::text AS state, j.provider, j.model, j.attempt,
           j.max_attempts, j.run_at, j.created_at, j.started_at, j.finished_at, j.idempotency_key,
           j.metadata, j.cancel_requested, j.last_error_class, j.last_error
      FROM sluice.jobs j;

CREATE VIEW sluice.result_view WITH (security_invoker = true) AS
    SELECT r.job_id, r.tenant, r.output_text, r.tool_calls, r.finish_reason, r.input_tokens, r.output_tokens,
           r.cache_read_tokens, r.cache_write_tokens, r.cost_usd, r.provider, r.model, r.latency_ms, r.ttft_ms,
           r.created_at
      FROM sluice.results r;

-- ---------------------------------------------------------------------------------------
-- Row-level security for roles bound to a tenant (members of sluice_tenant). The owner role
-- (migrations, workers, operators) is not subject to these policies.
-- ---------------------------------------------------------------------------------------
ALTER TABLE sluice.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE sluice.results ENABLE ROW LEVEL SECURITY;
ALTER TABLE sluice.attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE sluice.dead_letters ENABLE ROW LEVEL SECURITY;
ALTER TABLE sluice.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE sluice.usage_daily ENABLE ROW LEVEL SECURITY;
ALTER TABLE sluice.tenant_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE sluice.tenant_queue_depth ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_jobs ON sluice.jobs TO sluice_tenant
    USING (tenant = (SELECT sluice.current_tenant())) WITH CHECK (tenant = (SELECT sluice.current_tenant()));
CREATE POLICY tenant_results ON sluice.results TO sluice_tenant USING (tenant = (SELECT sluice.current_tenant()));
CREATE POLICY tenant_attempts ON sluice.attempts TO sluice_tenant USING (tenant = (SELECT sluice.current_tenant()));
CREATE POLICY tenant_dead_letters ON sluice.dead_letters TO sluice_tenant USING (tenant = (SELECT sluice.current_tenant()));
CREATE POLICY tenant_self ON sluice.tenants TO sluice_tenant USING (id = (SELECT sluice.current_tenant()));
CREATE POLICY tenant_role_self ON sluice.tenant_roles TO sluice_tenant USING (role_name = current_user);
CREATE POLICY tenant_usage ON sluice.usage_daily TO sluice_tenant USING (tenant = (SELECT sluice.current_tenant()));
CREATE POLICY tenant_queue_depth ON sluice.tenant_queue_depth TO sluice_tenant USING (tenant = (SELECT sluice.current_tenant()));

GRANT USAGE ON SCHEMA sluice TO sluice_tenant;
-- Read only: tenant roles enqueue and cancel through sluice.enqueue_specs / sluice.cancel.
GRANT SELECT ON sluice.jobs TO sluice_tenant;
GRANT SELECT ON sluice.tenant_roles TO sluice_tenant;
GRANT SELECT ON sluice.results, sluice.attempts, sluice.dead_letters, sluice.tenants, sluice.usage_daily, sluice.tenant_queue_depth,
                sluice.settings, sluice.providers, sluice.models, sluice.routes,
                sluice.job_view, sluice.result_view TO sluice_tenant;
