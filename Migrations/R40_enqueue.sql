-- Repeatable migration (see docs/ARCHITECTURE.md, "Schema evolution"). The R files are applied
-- in name order, after the versioned ones, whenever any of them changed. Edit in place; every
-- statement must be safe to run again (CREATE OR REPLACE; DROP FUNCTION IF EXISTS first when a
-- signature or return type changes). Tables, types, indexes, triggers, policies and grants
-- belong in new versioned files.
--
-- Admission and enqueue (single and batch, idempotent), and lane wake-ups.
-- Errors: SQLSTATE class SL with the field in COLUMN and the rule in CONSTRAINT:
--   SL001 invalid_spec     SL002 queue_full      SL003 tenant_paused
--   SL004 budget_exhausted SL005 not_found       SL006 not_permitted

-- Why a tenant may not enqueue more right now (hard budget spent), or NULL.
CREATE OR REPLACE FUNCTION sluice.budget_block(p_tenant text) RETURNS text
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
CREATE OR REPLACE FUNCTION sluice.spec_rows(specs jsonb, id_prefix bytea, id_base bigint, default_attempts integer, default_timeout_ms integer)
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
CREATE OR REPLACE FUNCTION sluice.enqueue_specs(specs jsonb, p_notify boolean DEFAULT true)
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
            RAISE EXCEPTION 'unknown tenant %: create it with `sluice tenants create %` (or let first jobs create tenants: UPDATE sluice.settings SET auto_create_tenants = true)', reason, reason
                USING ERRCODE = 'SL005', COLUMN = 'tenant', CONSTRAINT = 'exists';
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
CREATE OR REPLACE FUNCTION sluice.notify_lanes(lanes text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, sluice AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_notify('sluice_jobs', l) FROM unnest(lanes) AS l;
END
$$;

-- Enqueue one job. options: lane is an argument; the others (max_output_tokens, run_at,
-- max_attempts, timeout_ms, idempotency_key, webhook_url, metadata, traceparent, stream) come
-- from the options object. Returns the job id (the existing one for a repeated idempotency key).
CREATE OR REPLACE FUNCTION sluice.enqueue(tenant text, lane text, provider text, model text, request jsonb,
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
CREATE OR REPLACE FUNCTION sluice.enqueue_batch(jobs jsonb) RETURNS SETOF uuid
LANGUAGE sql SET search_path = pg_catalog, sluice AS $$
    SELECT e.id FROM sluice.enqueue_specs(jobs) e ORDER BY e.idx
$$;
