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

-- The tenant bound to the current role, or NULL for operator/service roles. (Invoker rights:
-- inside a SECURITY DEFINER function current_user would be the owner. Tenant roles may read
-- only their own row of tenant_roles, through the policy below.)
CREATE FUNCTION sluice.current_tenant() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT tenant FROM sluice.tenant_roles WHERE role_name = current_user
$$;

-- A tenant's queued jobs (committed and this transaction's own). Tenant-bound roles may ask
-- only about their own tenant.
CREATE FUNCTION sluice.queue_depth(p_tenant text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, sluice AS $$
    SELECT coalesce(sum(d.queued), 0)::bigint FROM sluice.tenant_queue_depth d
     WHERE d.tenant = p_tenant
       AND (sluice.current_tenant() IS NULL OR sluice.current_tenant() = p_tenant)
$$;

-- ---------------------------------------------------------------------------------------
-- Validation
-- ---------------------------------------------------------------------------------------
CREATE TYPE sluice.spec_error AS (field text, rule text, message text);

-- What validation reads from the database, fetched once per batch: the settings and the
-- provider/model/route registry, as one jsonb document.
CREATE FUNCTION sluice.validation_context() RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, sluice AS $$
    SELECT jsonb_build_object(
        'settings', (SELECT to_jsonb(s) FROM sluice.settings s),
        'providers', coalesce((SELECT jsonb_object_agg(p.name, jsonb_build_object(
                         'kind', p.kind,
                         'models', coalesce((SELECT jsonb_object_agg(m.model, true) FROM sluice.models m
                                              WHERE m.provider = p.name), '{}'::jsonb)))
                       FROM sluice.providers p), '{}'::jsonb),
        'routes', coalesce((SELECT jsonb_object_agg(r.name, true) FROM sluice.routes r), '{}'::jsonb))
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
    -- (The same rule as ^[a-z0-9][a-z0-9_-]{0,62}$; the bounded repetition made the regex
    -- 2.5x slower than an unbounded one plus a length test.)
    IF length(v #>> '{}') > 63 OR NOT (v #>> '{}') ~ '^[a-z0-9][a-z0-9_-]*$' THEN
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
        -- Fast path: one jsonpath test over all messages (== comparisons: like_regex cost 2x);
        -- walk them only to name a bad one.
        IF (kind = 'anthropic' AND jsonb_path_exists(v, '$[*] ? (@.type() != "object" || !(@.role == "user" || @.role == "assistant") || !(@.content.type() == "string" || (@.content.type() == "array" && !exists(@.content[*] ? (@.type() != "object" || !(@."type" == "text" || @."type" == "image" || @."type" == "document" || @."type" == "tool_use" || @."type" == "tool_result" || @."type" == "thinking" || @."type" == "redacted_thinking" || @."type" == "search_result"))))))'))
           OR (kind <> 'anthropic' AND jsonb_path_exists(v, '$[*] ? (@.type() != "object" || !(@.role == "system" || @.role == "developer" || @.role == "user" || @.role == "assistant" || @.role == "tool" || @.role == "function") || !(@.content.type() == "string" || (@.content.type() == "array" && !exists(@.content[*] ? (@.type() != "object" || !(@."type" == "text" || @."type" == "image_url" || @."type" == "input_audio" || @."type" == "file" || @."type" == "refusal"))))))')) THEN
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
        IF v IS NOT NULL AND (jsonb_typeof(v) <> 'number' OR (v #>> '{}')::numeric <> trunc((v #>> '{}')::numeric)
                              OR (v #>> '{}')::numeric < 1 OR (v #>> '{}')::numeric > max_tokens) THEN
            RETURN ('request.' || k, 'range', format('%s must be an integer from 1 to %s', k, max_tokens))::sluice.spec_error;
        END IF;
    END LOOP;
    v := spec -> 'max_output_tokens';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND (jsonb_typeof(v) <> 'number'
        OR (v #>> '{}')::numeric <> trunc((v #>> '{}')::numeric)
        OR (v #>> '{}')::numeric < 1 OR (v #>> '{}')::numeric > max_tokens) THEN
        RETURN ('max_output_tokens', 'range', format('max_output_tokens must be an integer from 1 to %s', max_tokens))::sluice.spec_error;
    END IF;
    IF kind = 'anthropic' AND req -> 'max_tokens' IS NULL
       AND (spec -> 'max_output_tokens' IS NULL OR jsonb_typeof(spec -> 'max_output_tokens') = 'null') THEN
        RETURN ('max_output_tokens', 'required', 'Anthropic requests need max_output_tokens (or request.max_tokens)')::sluice.spec_error;
    END IF;

    -- scheduling and retry options
    v := spec -> 'run_at';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND (jsonb_typeof(v) <> 'string'
        OR NOT (v #>> '{}') ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$') THEN
        RETURN ('run_at', 'format', 'run_at must be an RFC 3339 timestamp with a time zone, e.g. 2026-01-02T03:04:05Z')::sluice.spec_error;
    END IF;
    v := spec -> 'max_attempts';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND (jsonb_typeof(v) <> 'number'
        OR (v #>> '{}')::numeric <> trunc((v #>> '{}')::numeric)
        OR (v #>> '{}')::numeric < 1 OR (v #>> '{}')::numeric > (s ->> 'max_attempts_cap')::numeric) THEN
        RETURN ('max_attempts', 'range', format('max_attempts must be an integer from 1 to %s', s ->> 'max_attempts_cap'))::sluice.spec_error;
    END IF;
    v := spec -> 'timeout_ms';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND (jsonb_typeof(v) <> 'number'
        OR (v #>> '{}')::numeric <> trunc((v #>> '{}')::numeric)
        OR (v #>> '{}')::numeric < 1000 OR (v #>> '{}')::numeric > 86400000) THEN
        RETURN ('timeout_ms', 'range', 'timeout_ms must be an integer from 1000 to 86400000')::sluice.spec_error;
    END IF;
    v := spec -> 'idempotency_key';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND (jsonb_typeof(v) <> 'string'
        OR length(v #>> '{}') < 1 OR length(v #>> '{}') > (s ->> 'max_idempotency_key')::integer) THEN
        RETURN ('idempotency_key', 'length', format('idempotency_key must be a string of 1 to %s characters', s ->> 'max_idempotency_key'))::sluice.spec_error;
    END IF;
    v := spec -> 'webhook_url';
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' THEN
        IF jsonb_typeof(v) <> 'string' OR length(v #>> '{}') > 2048
           OR NOT (v #>> '{}') ~* '^[a-z][a-z0-9+.-]*://[^/?#\s@]+(:[0-9]{1,5})?([/?#]\S*)?$' THEN
            RETURN ('webhook_url', 'format', 'webhook_url must be an absolute URL of at most 2048 characters')::sluice.spec_error;
        END IF;
        IF NOT ((v #>> '{}') ~* '^https://' OR ((s ->> 'allow_http_webhooks')::boolean AND (v #>> '{}') ~* '^http://')) THEN
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
    IF v IS NOT NULL AND jsonb_typeof(v) <> 'null' AND (jsonb_typeof(v) <> 'string'
        OR NOT (v #>> '{}') ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'
        OR (v #>> '{}') ~ '^ff-' OR (v #>> '{}') ~ '^..-0{32}-' OR (v #>> '{}') ~ '-0{16}-..$') THEN
        RETURN ('traceparent', 'format', 'traceparent must be a W3C trace context header value (00-<32 hex>-<16 hex>-<2 hex>)')::sluice.spec_error;
    END IF;
    v := spec -> 'stream';
    IF v IS NOT NULL AND jsonb_typeof(v) NOT IN ('boolean', 'null') THEN
        RETURN ('stream', 'type', 'stream must be true or false')::sluice.spec_error;
    END IF;
    RETURN NULL;
END
$$;

-- Every invalid spec of a batch with its index (0-based), field, rule and message.
CREATE FUNCTION sluice.spec_errors(specs jsonb)
RETURNS TABLE (idx integer, field text, rule text, message text)
LANGUAGE sql STABLE SET search_path = pg_catalog, sluice SET jit = off AS $$
    -- MATERIALIZED: computed once. As a plain sub-select the planner may put it on the inner
    -- side of the nested loop and re-run it for every spec (measured: 38 µs per spec).
    WITH x AS MATERIALIZED (SELECT sluice.validation_context() AS ctx)
    SELECT (t.ord - 1)::integer, (e).field, (e).rule, (e).message
      FROM x
      CROSS JOIN jsonb_array_elements(specs) WITH ORDINALITY AS t(spec, ord)
      CROSS JOIN LATERAL (SELECT sluice.check_spec(t.spec, x.ctx) AS e) c
     WHERE c.e IS NOT NULL
$$;

-- Why a tenant may not enqueue more right now (hard budget spent), or NULL.
CREATE FUNCTION sluice.budget_block(p_tenant text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, sluice AS $$
    SELECT CASE
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
           OR t.daily_usd_budget_hard IS NOT NULL OR t.monthly_usd_budget_hard IS NOT NULL)
$$;

-- ---------------------------------------------------------------------------------------
-- Enqueue
-- ---------------------------------------------------------------------------------------
-- Validates, admits and inserts a batch of specs, all or nothing. Returns one row per input
-- spec (idx is 0-based) with the job id and whether it was created now (false: an existing
-- job with the same tenant + idempotency key, possibly one inserted concurrently).
--
-- p_notify: wake workers with NOTIFY inside this transaction (the default). PostgreSQL
-- serialises the commits of notifying transactions (a database-wide lock held through the WAL
-- flush), so clients that enqueue at a high rate pass false and call sluice.notify_lanes()
-- after committing, coalescing many enqueues into one notification (the Swift client does).
CREATE FUNCTION sluice.enqueue_specs(specs jsonb, p_notify boolean DEFAULT true)
RETURNS TABLE (idx integer, id uuid, created boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off AS $$
DECLARE
    s sluice.settings;
    errs jsonb;
    first_err record;
    me text := sluice.current_tenant();
    t record;
    depth bigint;
    reason text;
    v_idx integer[];
    v_id uuid[];
    v_inserted boolean[];
    v_tenant text[];
    v_key text[];
    v_lanes text[];
    has_keys boolean;
BEGIN
    SELECT * INTO s FROM sluice.settings;
    IF specs IS NULL OR jsonb_typeof(specs) <> 'array' THEN
        RAISE EXCEPTION 'jobs must be a JSON array of job specs'
            USING ERRCODE = 'SL001', COLUMN = 'jobs', CONSTRAINT = 'array';
    END IF;
    IF jsonb_array_length(specs) > s.max_batch_size THEN
        RAISE EXCEPTION 'a batch holds at most % jobs (got %)', s.max_batch_size, jsonb_array_length(specs)
            USING ERRCODE = 'SL001', COLUMN = 'jobs', CONSTRAINT = 'max_batch_size';
    END IF;

    SELECT jsonb_agg(jsonb_build_object('index', e.idx, 'field', e.field, 'rule', e.rule, 'message', e.message) ORDER BY e.idx)
      INTO errs FROM sluice.spec_errors(specs) e;
    IF errs IS NOT NULL THEN
        SELECT * INTO first_err FROM jsonb_to_record(errs -> 0) AS x(index integer, field text, rule text, message text);
        RAISE EXCEPTION '%', CASE WHEN jsonb_array_length(specs) = 1 THEN format('%s: %s', first_err.field, first_err.message)
                                  ELSE format('job %s: %s: %s (%s invalid jobs in the batch)', first_err.index, first_err.field,
                                              first_err.message, jsonb_array_length(errs)) END
            USING ERRCODE = 'SL001', COLUMN = first_err.field, CONSTRAINT = first_err.rule, DETAIL = errs::text;
    END IF;

    has_keys := jsonb_path_exists(specs, '$[*] ? (exists(@.idempotency_key) && @.idempotency_key != null)');

    -- A role bound to a tenant may only enqueue for that tenant.
    IF me IS NOT NULL THEN
        SELECT x.ord - 1 AS i, x.spec ->> 'tenant' AS tenant INTO t
          FROM jsonb_array_elements(specs) WITH ORDINALITY AS x(spec, ord)
         WHERE x.spec ->> 'tenant' <> me LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'this role may only enqueue jobs for tenant %', me
                USING ERRCODE = 'SL006', COLUMN = 'tenant', CONSTRAINT = 'permitted';
        END IF;
    END IF;

    -- Unknown tenants are created with default limits when settings allow it.
    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT x.spec ->> 'tenant' AS tenant FROM jsonb_array_elements(specs) AS x(spec)) d
                WHERE NOT EXISTS (SELECT 1 FROM sluice.tenants tt WHERE tt.id = d.tenant)) THEN
        IF NOT s.auto_create_tenants OR me IS NOT NULL THEN
            SELECT d.tenant INTO reason FROM (SELECT DISTINCT x.spec ->> 'tenant' AS tenant FROM jsonb_array_elements(specs) AS x(spec)) d
             WHERE NOT EXISTS (SELECT 1 FROM sluice.tenants tt WHERE tt.id = d.tenant) LIMIT 1;
            RAISE EXCEPTION 'unknown tenant %', reason USING ERRCODE = 'SL005', COLUMN = 'tenant', CONSTRAINT = 'exists';
        END IF;
        INSERT INTO sluice.tenants (id)
        SELECT DISTINCT x.spec ->> 'tenant' FROM jsonb_array_elements(specs) AS x(spec)
        ON CONFLICT DO NOTHING;
    END IF;

    -- Admission control, per tenant of the batch.
    FOR t IN
        SELECT tt.id, tt.paused, tt.max_queued_jobs, count(*) AS incoming
          FROM jsonb_array_elements(specs) AS x(spec)
          JOIN sluice.tenants tt ON tt.id = x.spec ->> 'tenant'
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

    -- One statement inserts; its outcome per spec is kept in arrays (no temporary table: creating
    -- and dropping one per call writes the catalog and serialised concurrent enqueues). The
    -- ON CONFLICT clause (a speculative insertion per row, ~15 % of the insert) is only added
    -- when some spec carries an idempotency key.
    EXECUTE format($sql$
    WITH src AS (
        SELECT (x.ord - 1)::integer AS idx, sluice.uuid_v7() AS id, x.spec
          FROM jsonb_array_elements($1) WITH ORDINALITY AS x(spec, ord)
    ), ins AS (
        INSERT INTO sluice.jobs AS j (id, tenant, lane, provider, model, request, stream, max_output_tokens,
                                      estimated_input_tokens, run_at, max_attempts, timeout_ms, idempotency_key,
                                      webhook_url, metadata, traceparent)
        SELECT src.id,
               src.spec ->> 'tenant',
               coalesce(src.spec ->> 'lane', 'normal')::sluice.lane,
               coalesce(src.spec ->> 'provider', 'route'),
               coalesce(src.spec ->> 'model', src.spec ->> 'route'),
               src.spec -> 'request',
               coalesce((src.spec ->> 'stream')::boolean, true),
               coalesce((src.spec ->> 'max_output_tokens')::integer, (src.spec #>> '{request,max_tokens}')::integer,
                        (src.spec #>> '{request,max_completion_tokens}')::integer),
               (octet_length((src.spec -> 'request')::text) + 3) / 4,
               coalesce((src.spec ->> 'run_at')::timestamptz, now()),
               coalesce((src.spec ->> 'max_attempts')::integer, $2),
               coalesce((src.spec ->> 'timeout_ms')::integer, $3),
               src.spec ->> 'idempotency_key',
               src.spec ->> 'webhook_url',
               coalesce(nullif(src.spec -> 'metadata', 'null'::jsonb), '{}'::jsonb),
               src.spec ->> 'traceparent'
          FROM src
         %s
        RETURNING j.id
    )
    -- The arrays are built in one pass, so they line up with each other; order is restored
    -- by idx when the rows are returned.
    SELECT array_agg(t.idx), array_agg(t.id), array_agg(t.inserted), array_agg(t.tenant), array_agg(t.key),
           array_agg(DISTINCT t.lane) FILTER (WHERE t.inserted)
      FROM (SELECT src.idx, src.id, ins.id IS NOT NULL AS inserted, src.spec ->> 'tenant' AS tenant,
                   src.spec ->> 'idempotency_key' AS key, coalesce(src.spec ->> 'lane', 'normal') AS lane
              FROM src LEFT JOIN ins ON ins.id = src.id) t
    $sql$, CASE WHEN has_keys THEN 'ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING' ELSE '' END)
      INTO v_idx, v_id, v_inserted, v_tenant, v_key, v_lanes
     USING specs, s.default_max_attempts, s.default_timeout_ms;

    -- Wake workers: one notification per lane (PostgreSQL folds duplicates within a
    -- transaction, so a 10,000-job batch wakes each lane once).
    IF p_notify THEN
        PERFORM pg_notify('sluice_jobs', l) FROM unnest(v_lanes) AS l;
    END IF;

    -- Specs that matched an existing idempotency key (including one committed concurrently
    -- while we waited on its key: these statements have a fresh snapshot) map to that job,
    -- unless row-level security hides it from this role.
    IF EXISTS (SELECT 1 FROM unnest(v_inserted, v_tenant, v_key) AS u(inserted, tenant, key)
                WHERE NOT u.inserted
                  AND NOT EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.tenant = u.tenant AND j.idempotency_key = u.key)) THEN
        RAISE EXCEPTION 'an existing job with the same idempotency key is not visible to this role'
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
-- it is. Returns the job's state afterwards.
CREATE FUNCTION sluice.cancel(job uuid) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, sluice AS $$
DECLARE
    st sluice.job_state;
BEGIN
    SELECT j.state INTO st FROM sluice.jobs j WHERE j.id = job FOR UPDATE;
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

CREATE POLICY tenant_jobs ON sluice.jobs TO sluice_tenant
    USING (tenant = (SELECT sluice.current_tenant())) WITH CHECK (tenant = (SELECT sluice.current_tenant()));
CREATE POLICY tenant_results ON sluice.results TO sluice_tenant USING (tenant = (SELECT sluice.current_tenant()));
CREATE POLICY tenant_attempts ON sluice.attempts TO sluice_tenant USING (tenant = (SELECT sluice.current_tenant()));
CREATE POLICY tenant_dead_letters ON sluice.dead_letters TO sluice_tenant USING (tenant = (SELECT sluice.current_tenant()));
CREATE POLICY tenant_self ON sluice.tenants TO sluice_tenant USING (id = (SELECT sluice.current_tenant()));
CREATE POLICY tenant_role_self ON sluice.tenant_roles TO sluice_tenant USING (role_name = current_user);
CREATE POLICY tenant_usage ON sluice.usage_daily TO sluice_tenant USING (tenant = (SELECT sluice.current_tenant()));

GRANT USAGE ON SCHEMA sluice TO sluice_tenant;
GRANT SELECT, INSERT ON sluice.jobs TO sluice_tenant;
GRANT UPDATE (state, finished_at, cancel_requested, last_error_class, last_error) ON sluice.jobs TO sluice_tenant;
GRANT SELECT ON sluice.tenant_roles TO sluice_tenant;
GRANT SELECT ON sluice.results, sluice.attempts, sluice.dead_letters, sluice.tenants, sluice.usage_daily,
                sluice.settings, sluice.providers, sluice.models, sluice.routes,
                sluice.job_view, sluice.result_view TO sluice_tenant;
