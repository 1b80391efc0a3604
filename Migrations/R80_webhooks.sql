-- Repeatable migration (see docs/ARCHITECTURE.md, "Schema evolution"). The R files are applied
-- in name order, after the versioned ones, whenever any of them changed. Edit in place; every
-- statement must be safe to run again (CREATE OR REPLACE; DROP FUNCTION IF EXISTS first when a
-- signature or return type changes). Tables, types, indexes, triggers, policies and grants
-- belong in new versioned files.
--
-- Webhook delivery (the outbox of 0005: its trigger, the dispatchers' claim and completion,
-- the payload) and dead-letter replay.

-- RFC 3339 in UTC with milliseconds, as every timestamp Sluice prints. STABLE like to_char, and
-- without SET clauses, so the planner inlines it (a call per use cost more than the whole
-- payload).
CREATE OR REPLACE FUNCTION sluice.rfc3339(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- The outbox trigger (0005 creates it: AFTER UPDATE ON sluice.jobs, per statement): jobs that
-- this statement moved into a terminal state and that have a webhook (their own URL, else their
-- tenant's) get one delivery row each, in the same transaction as the state change. Statements
-- that make nothing terminal (claims, lease renewals) stop at the first check; so do terminal
-- rows without any webhook (no URL on the job, none on its tenant: one pass over the new rows
-- and a probe of tenants per tenant of the statement). Before that second check, every
-- completion paid the join of the statement's old and new rows, whole job rows hashed: ~1 ms
-- per group of ~130 jobs, ~5 % of sluice.finish_attempts (pg_stat_statements, e2e benchmark).
-- When it wrote any, it notifies sluice_webhooks (once per transaction: PostgreSQL folds
-- identical notifications), which wakes the dispatchers; installations without webhooks never
-- notify.
-- SECURITY DEFINER: a tenant role's cancel must be able to write the outbox.
CREATE OR REPLACE FUNCTION sluice.jobs_webhooks() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sluice AS $$
DECLARE
    written integer;
    v_tenants text[];
    v_own boolean;
BEGIN
    -- One pass over the statement's new rows: the terminal ones' tenants, and whether any of
    -- them has its own URL.
    SELECT array_agg(DISTINCT n.tenant), bool_or(n.webhook_url IS NOT NULL)
      INTO v_tenants, v_own
      FROM new_rows n WHERE n.state > 'running';
    IF v_tenants IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT v_own AND NOT EXISTS (SELECT 1 FROM sluice.tenants t WHERE t.id = ANY (v_tenants) AND t.webhook_url IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    INSERT INTO sluice.webhook_deliveries (job_id, tenant, event, url)
    SELECT n.id, n.tenant, 'job.' || n.state::text, coalesce(n.webhook_url, t.webhook_url)
      FROM new_rows n
      JOIN old_rows o ON o.id = n.id AND o.state <= 'running'
      LEFT JOIN sluice.tenants t ON t.id = n.tenant
     WHERE n.state > 'running' AND coalesce(n.webhook_url, t.webhook_url) IS NOT NULL
     ORDER BY n.id
    ON CONFLICT (job_id, event) DO NOTHING;
    GET DIAGNOSTICS written = ROW_COUNT;
    IF written > 0 THEN
        PERFORM pg_notify('sluice_webhooks', '');
    END IF;
    RETURN NULL;
END
$$;

-- The body of a delivery (Standard Webhooks' {type, timestamp, data} envelope), from the job's
-- terminal rows, which do not change, so every retry sends the same bytes. Never carries the
-- request, API keys or secrets. A job pruned before delivery (j NULL) is described by id only.
-- Usage and cost: the result's, else the attempts' sums (a_*). One expression, no SET clause:
-- the planner inlines it into the claim (a per-row function call cost ~0.2 ms).
DROP FUNCTION IF EXISTS sluice.webhook_payload(uuid, text, text, timestamptz);
CREATE OR REPLACE FUNCTION sluice.webhook_body(p_event text, p_created timestamptz, p_job uuid, p_tenant text,
                                               j sluice.jobs, r sluice.results, a_input bigint, a_output bigint,
                                               a_cache_read bigint, a_cache_write bigint, a_cost numeric)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'type', p_event,
        'timestamp', sluice.rfc3339(p_created),
        'data', CASE WHEN (j).id IS NULL THEN jsonb_build_object('id', p_job, 'tenant', p_tenant, 'pruned', true)
        ELSE jsonb_build_object(
            'id', (j).id, 'tenant', (j).tenant, 'lane', (j).lane, 'state', (j).state,
            'provider', coalesce((r).provider, (j).provider), 'model', coalesce((r).model, (j).model),
            'attempts', (j).attempt, 'max_attempts', (j).max_attempts,
            'created_at', sluice.rfc3339((j).created_at), 'started_at', sluice.rfc3339((j).started_at),
            'finished_at', sluice.rfc3339((j).finished_at),
            'metadata', (j).metadata, 'replay_of', (j).replay_of,
            'output', CASE WHEN (r).job_id IS NULL THEN NULL ELSE jsonb_build_object(
                'text', (r).output_text, 'tool_calls', (r).tool_calls, 'finish_reason', (r).finish_reason) END,
            'error', CASE WHEN (j).state = 'succeeded' THEN NULL ELSE jsonb_build_object(
                'class', (j).last_error_class, 'message', (j).last_error) END,
            'usage', jsonb_build_object(
                'input_tokens', coalesce((r).input_tokens, a_input, 0),
                'output_tokens', coalesce((r).output_tokens, a_output, 0),
                'cache_read_tokens', coalesce((r).cache_read_tokens, a_cache_read, 0),
                'cache_write_tokens', coalesce((r).cache_write_tokens, a_cache_write, 0)),
            'cost_usd', CASE WHEN (r).job_id IS NOT NULL THEN (r).cost_usd ELSE a_cost END,
            'latency_ms', (r).latency_ms)
        END)
$$;

-- Claims up to p_limit due deliveries for a dispatcher (SKIP LOCKED: dispatchers in many
-- processes share the outbox). Each claimed row's attempt count goes up and it is not due
-- again until p_lease has passed, so a dispatcher that dies mid-delivery leaves it to another.
-- Returns the body to send and the tenant's signing secrets (newest first; a rotated-out secret
-- signs until it expires), and why the endpoint is disabled, if it is.
-- The result gained traceparent (the job's W3C trace context, for the delivery's span).
DROP FUNCTION IF EXISTS sluice.claim_webhooks(integer, interval);
CREATE OR REPLACE FUNCTION sluice.claim_webhooks(p_limit integer, p_lease interval)
RETURNS TABLE (id uuid, job_id uuid, tenant text, event text, url text, attempt integer, created_at timestamptz,
               payload text, secrets text[], disabled_reason text, traceparent text)
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH due AS (
        SELECT d.id FROM sluice.webhook_deliveries d
         WHERE d.state = 'pending' AND d.next_attempt_at <= now()
         ORDER BY d.next_attempt_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    ), upd AS (
        UPDATE sluice.webhook_deliveries d
           SET attempts = d.attempts + 1, next_attempt_at = now() + p_lease, last_attempt_at = now()
          FROM due WHERE d.id = due.id
        RETURNING d.id, d.job_id, d.tenant, d.event, d.url, d.attempts, d.created_at
    ), sec AS (
        SELECT s.tenant, array_agg(s.secret ORDER BY s.created_at DESC, s.secret) AS secrets
          FROM sluice.tenant_secrets s
         WHERE s.tenant IN (SELECT DISTINCT u.tenant FROM upd u) AND (s.expires_at IS NULL OR s.expires_at > now())
         GROUP BY s.tenant
    )
    SELECT u.id, u.job_id, u.tenant::text, u.event, u.url, u.attempts, u.created_at,
           sluice.webhook_body(u.event, u.created_at, u.job_id, u.tenant, j, r, a.input_tokens, a.output_tokens,
                               a.cache_read_tokens, a.cache_write_tokens, a.cost_usd)::text,
           coalesce(sec.secrets, '{}'),
           CASE WHEN e.disabled_at IS NOT NULL THEN coalesce(e.disabled_reason, 'disabled') END,
           j.traceparent
      FROM upd u
      LEFT JOIN sluice.jobs j ON j.id = u.job_id
      LEFT JOIN sluice.results r ON r.job_id = u.job_id
      LEFT JOIN LATERAL (
          SELECT sum(x.input_tokens)::bigint AS input_tokens, sum(x.output_tokens)::bigint AS output_tokens,
                 sum(x.cache_read_tokens)::bigint AS cache_read_tokens, sum(x.cache_write_tokens)::bigint AS cache_write_tokens,
                 sum(x.cost_usd) AS cost_usd
            FROM sluice.attempts x WHERE x.job_id = u.job_id AND r.job_id IS NULL) a ON true
      LEFT JOIN sec ON sec.tenant = u.tenant
      LEFT JOIN sluice.webhook_endpoints e ON e.tenant = u.tenant AND e.url = u.url;
END
$$;

-- Records a group of delivery outcomes. Each item: {"id", "attempt", "outcome", "status",
-- "error", "next_at" (Unix seconds)} with outcome
--   delivered  2xx: done; the endpoint is healthy again
--   retry      a failure with attempts left: due again at next_at
--   failed     a failure after the last attempt: failed, visible, redeliverable
--   gone       410 Gone: failed, and the endpoint is disabled
--   skipped    not sent (the endpoint is disabled): failed, the endpoint untouched
-- An item applies only while the row is pending at that attempt (a dispatcher that lost its
-- claim to another cannot overwrite it). An endpoint failing without a success for longer than
-- p_disable_after is disabled. Returns how many items applied.
CREATE OR REPLACE FUNCTION sluice.finish_webhooks(p_items jsonb, p_disable_after interval)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off AS $$
DECLARE
    n integer;
BEGIN
    WITH items AS (
        SELECT x.id, x.attempt, x.outcome, x.status, left(x.error, 1000) AS error, x.next_at
          FROM jsonb_to_recordset(p_items) AS x(id uuid, attempt integer, outcome text, status integer, error text,
                                                next_at double precision)
    ), upd AS (
        UPDATE sluice.webhook_deliveries d
           SET state = CASE i.outcome WHEN 'delivered' THEN 'delivered' WHEN 'retry' THEN 'pending' ELSE 'failed' END,
               next_attempt_at = CASE WHEN i.outcome = 'retry' THEN coalesce(to_timestamp(i.next_at), now()) ELSE d.next_attempt_at END,
               last_status = i.status, last_error = CASE WHEN i.outcome = 'delivered' THEN NULL ELSE i.error END,
               delivered_at = CASE WHEN i.outcome = 'delivered' THEN now() END
          FROM items i
         WHERE d.id = i.id AND d.attempts = i.attempt AND d.state = 'pending'
        RETURNING d.tenant, d.url, i.outcome
    ), ep AS (
        INSERT INTO sluice.webhook_endpoints AS e (tenant, url, failing_since, last_success_at, disabled_at, disabled_reason)
        SELECT u.tenant, u.url,
               CASE WHEN bool_or(u.outcome = 'delivered') THEN NULL ELSE now() END,
               CASE WHEN bool_or(u.outcome = 'delivered') THEN now() END,
               CASE WHEN bool_or(u.outcome = 'gone') THEN now() END,
               CASE WHEN bool_or(u.outcome = 'gone') THEN 'the endpoint answered 410 Gone' END
          FROM upd u
         WHERE u.outcome <> 'skipped'
         GROUP BY u.tenant, u.url
         ORDER BY u.tenant, u.url
        ON CONFLICT (tenant, url) DO UPDATE SET
            failing_since = CASE WHEN excluded.last_success_at IS NOT NULL THEN NULL ELSE coalesce(e.failing_since, now()) END,
            last_success_at = coalesce(excluded.last_success_at, e.last_success_at),
            disabled_at = CASE WHEN e.disabled_at IS NOT NULL THEN e.disabled_at
                               WHEN excluded.disabled_at IS NOT NULL THEN now()
                               WHEN excluded.last_success_at IS NULL AND e.failing_since < now() - p_disable_after THEN now() END,
            disabled_reason = CASE WHEN e.disabled_at IS NOT NULL THEN e.disabled_reason
                                   WHEN excluded.disabled_at IS NOT NULL THEN excluded.disabled_reason
                                   WHEN excluded.last_success_at IS NULL AND e.failing_since < now() - p_disable_after
                                   THEN 'failing since ' || sluice.rfc3339(e.failing_since) || ' without a success' END
    )
    SELECT count(*) INTO n FROM upd;
    RETURN n;
END
$$;

-- Sends deliveries again (failed or delivered ones; pending ones are left alone): pending, due
-- now, with a fresh retry schedule. Returns the ids that were queued again.
CREATE OR REPLACE FUNCTION sluice.redeliver_webhooks(p_ids uuid[])
RETURNS SETOF uuid
LANGUAGE sql SET search_path = pg_catalog, sluice AS $$
    WITH again AS (
        UPDATE sluice.webhook_deliveries d
           SET state = 'pending', attempts = 0, next_attempt_at = now(), delivered_at = NULL
         WHERE d.id = ANY (p_ids) AND d.state <> 'pending'
        RETURNING d.id
    ), woken AS (
        SELECT pg_notify('sluice_webhooks', '') WHERE EXISTS (SELECT 1 FROM again)
    )
    SELECT again.id FROM again LEFT JOIN woken ON true
$$;

-- Deletes finished deliveries (delivered or failed) created before p_before, at most p_limit.
CREATE OR REPLACE FUNCTION sluice.prune_webhooks(p_before timestamptz, p_limit integer DEFAULT 1000)
RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, sluice AS $$
    WITH victims AS (
        SELECT d.id FROM sluice.webhook_deliveries d
         WHERE d.state <> 'pending' AND d.created_at < p_before
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    ), del AS (
        DELETE FROM sluice.webhook_deliveries d USING victims v WHERE d.id = v.id RETURNING d.id
    )
    SELECT count(*)::integer FROM del
$$;

-- Dead-letter replay: each dead letter of p_ids becomes a fresh job (a copy of the dead job's
-- spec: new id, attempt 0, queued now, replay_of = the dead job), and the dead letter records
-- when, by whom and as which job, in the same statement, so a replay interrupted at any point
-- and run again never queues a dead letter twice. A dead letter replayed before is skipped
-- unless p_force. p_lane (optional) overrides the lane. Returns one row per id:
-- outcome 'replayed' (replayed_as = the new job), 'already_replayed' (replayed_as = the earlier
-- job) or 'not_found'.
CREATE OR REPLACE FUNCTION sluice.replay_dead_letters(p_ids uuid[], p_by text, p_force boolean, p_lane text DEFAULT NULL)
RETURNS TABLE (job_id uuid, replayed_as uuid, outcome text)
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH dl AS (
        SELECT x.job_id, x.replayed_as FROM sluice.dead_letters x
         WHERE x.job_id = ANY (p_ids)
         ORDER BY x.job_id
           FOR UPDATE
    ), todo AS (
        SELECT d.job_id, sluice.uuid_v7() AS new_id FROM dl d WHERE d.replayed_as IS NULL OR p_force
    ), ins AS (
        INSERT INTO sluice.jobs (id, tenant, lane, provider, model, request, stream, max_output_tokens,
                                 estimated_input_tokens, max_attempts, timeout_ms, webhook_url, metadata, traceparent, replay_of)
        SELECT t.new_id, j.tenant, coalesce(p_lane::sluice.lane, j.lane), j.provider, j.model, j.request, j.stream,
               j.max_output_tokens, j.estimated_input_tokens, j.max_attempts, j.timeout_ms, j.webhook_url, j.metadata,
               j.traceparent, j.id
          FROM todo t JOIN sluice.jobs j ON j.id = t.job_id
        RETURNING sluice.jobs.id, sluice.jobs.replay_of, sluice.jobs.lane
    ), mark AS (
        UPDATE sluice.dead_letters x SET replayed_at = now(), replayed_as = i.id, replayed_by = p_by
          FROM ins i WHERE x.job_id = i.replay_of
        RETURNING x.job_id
    ), notes AS (
        SELECT count(pg_notify('sluice_jobs', l.lane)) AS sent FROM (SELECT DISTINCT i.lane::text AS lane FROM ins i) l
    )
    SELECT p.id,
           coalesce(i.id, d.replayed_as),
           CASE WHEN i.id IS NOT NULL THEN 'replayed' WHEN d.job_id IS NULL THEN 'not_found' ELSE 'already_replayed' END
      FROM (SELECT DISTINCT u.id FROM unnest(p_ids) AS u(id)) p
      LEFT JOIN dl d ON d.job_id = p.id
      LEFT JOIN ins i ON i.replay_of = p.id
     CROSS JOIN notes;
END
$$;
