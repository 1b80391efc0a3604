-- The worker side: claiming (lanes, tenant fairness, per-tenant concurrency), lease renewal
-- and rescue, and retention. Completion is a batched statement issued by the worker.

-- Claims up to p_limit runnable jobs for worker p_worker and marks them running with a lease.
--
-- Order: lanes strictly by priority (interactive, high, normal, batch), except that a lower
-- lane whose oldest runnable job has waited longer than p_starvation gets up to
-- ceil(p_limit / 10) of the slots first (the anti-starvation rule: a lower lane is never
-- starved for longer than p_starvation plus one claim round). Within a lane, tenants take
-- turns ordered by (jobs already running + k) for each tenant's k-th oldest job, so the
-- least-loaded tenant goes first and a tenant with a large backlog cannot push another
-- tenant's new jobs behind it. No tenant gets more than
-- max_concurrency minus its running jobs.
--
-- Claims are serialised by a transaction-level advisory lock so the per-tenant concurrency
-- count cannot be raced by two workers; each claim reads only the hot partial indexes
-- (queued and running rows), so the lock is held for well under a millisecond at typical
-- batch sizes. FOR UPDATE SKIP LOCKED skips rows a canceller or rescuer holds at that moment.
--
-- p_reserved of the p_limit slots may only take interactive jobs, so a worker whose slots are
-- full of lower-lane work still starts an interactive job as soon as it arrives.
CREATE FUNCTION sluice.claim(p_worker text, p_limit integer, p_lanes sluice.lane[], p_tenants text[],
                             p_lease interval, p_starvation interval DEFAULT interval '10 seconds',
                             p_reserved integer DEFAULT 0)
RETURNS SETOF sluice.jobs
LANGUAGE plpgsql SET search_path = pg_catalog, sluice AS $$
BEGIN
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(7305692411130281001);
    RETURN QUERY
    WITH RECURSIVE ready_tenants AS (
        -- Distinct tenants with queued jobs: a skip scan over the claim index.
        (SELECT j.tenant FROM sluice.jobs j WHERE j.state = 'queued' ORDER BY j.tenant LIMIT 1)
        UNION ALL
        SELECT (SELECT j.tenant FROM sluice.jobs j WHERE j.state = 'queued' AND j.tenant > r.tenant
                 ORDER BY j.tenant LIMIT 1)
          FROM ready_tenants r WHERE r.tenant IS NOT NULL
    ), allowance AS (
        SELECT t.id AS tenant, t.max_concurrency - rc.running AS free, rc.running
          FROM ready_tenants r
          JOIN sluice.tenants t ON t.id = r.tenant
          CROSS JOIN LATERAL (SELECT count(*) AS running FROM sluice.jobs j
                               WHERE j.state = 'running' AND j.tenant = t.id) rc
         WHERE r.tenant IS NOT NULL AND NOT t.paused
           AND (p_tenants IS NULL OR t.id = ANY (p_tenants))
    ), candidates AS (
        SELECT c.id, c.tenant, c.lane, c.run_at,
               -- A tenant's k-th job in this claim queues behind its jobs already running, so
               -- the least-loaded tenants go first (a quiet tenant beats a busy one's backlog).
               a.running + row_number() OVER (PARTITION BY c.tenant, c.lane ORDER BY c.run_at, c.id) AS turn
          FROM allowance a
          CROSS JOIN (SELECT greatest(count(*), 1) AS tenants FROM allowance WHERE free > 0) n
          CROSS JOIN unnest(p_lanes) AS l(lane)
          CROSS JOIN LATERAL (
              SELECT j.id, j.tenant, j.lane, j.run_at FROM sluice.jobs j
               WHERE j.tenant = a.tenant AND j.lane = l.lane AND j.state = 'queued' AND j.run_at <= now()
               ORDER BY j.run_at, j.id
               -- A tenant's fair share of this claim (twice the even split, at least 4): enough for
               -- round robin without reading every tenant's whole allowance. When few tenants have
               -- work the claim may come back short; the worker then claims again at once.
               LIMIT LEAST(a.free, p_limit, greatest(4, 2 * ceil(p_limit::numeric / n.tenants)::integer))
          ) c
         WHERE a.free > 0
    ), lanes AS (
        SELECT c.lane, min(c.run_at) AS oldest FROM candidates c GROUP BY c.lane
    ), ranked AS (
        SELECT c.*,
               -- Starving lower lanes first (bounded share), then strict lane priority,
               -- then tenants in turn, then age.
               CASE WHEN ls.oldest < now() - p_starvation AND c.lane > (SELECT min(lane) FROM lanes)
                         AND row_number() OVER (PARTITION BY c.lane ORDER BY c.turn, c.run_at, c.id)
                             <= greatest(1, ceil(p_limit / 10.0))
                    THEN 0 ELSE 1 END AS starving_first
          FROM candidates c JOIN lanes ls ON ls.lane = c.lane
    ), ordered AS (
        SELECT r.id, r.tenant, r.lane,
               row_number() OVER (ORDER BY r.starving_first, r.lane, r.turn, r.run_at, r.id) AS pos
          FROM ranked r
    ), capped AS (
        SELECT o.id, o.pos
          FROM (SELECT o.*, row_number() OVER (PARTITION BY o.tenant ORDER BY o.pos) AS nth,
                       row_number() OVER (PARTITION BY o.lane = 'interactive' ORDER BY o.pos) AS nth_in_group
                  FROM ordered o) o
          JOIN allowance a ON a.tenant = o.tenant
         WHERE o.nth <= a.free
           AND (o.lane = 'interactive' OR o.nth_in_group <= p_limit - greatest(p_reserved, 0))
         ORDER BY o.pos
         LIMIT p_limit
    ), locked AS (
        SELECT j.id FROM sluice.jobs j JOIN capped c ON c.id = j.id
         WHERE j.state = 'queued'
           FOR UPDATE OF j SKIP LOCKED
    )
    UPDATE sluice.jobs j
       SET state = 'running', attempt = j.attempt + 1, lease_owner = p_worker,
           lease_expires_at = now() + p_lease, started_at = now()
      FROM locked
     WHERE j.id = locked.id
    RETURNING j.*;
END
$$;

-- Renews the leases of a worker's running jobs. Returns, for each id given, whether the worker
-- still owns it (false: the job was rescued or finished elsewhere; abort the call) and whether
-- a cancel was requested.
CREATE FUNCTION sluice.renew_leases(p_worker text, p_ids uuid[], p_lease interval)
RETURNS TABLE (id uuid, owned boolean, cancel_requested boolean)
LANGUAGE sql SET search_path = pg_catalog, sluice AS $$
    WITH renewed AS (
        UPDATE sluice.jobs j SET lease_expires_at = now() + p_lease
         WHERE j.id = ANY (p_ids) AND j.state = 'running' AND j.lease_owner = p_worker
        RETURNING j.id, j.cancel_requested
    )
    SELECT i.id, r.id IS NOT NULL, coalesce(r.cancel_requested, false)
      FROM unnest(p_ids) AS i(id) LEFT JOIN renewed r ON r.id = i.id
$$;

-- Jobs whose lease expired (their worker died or lost the database) go back to the queue as
-- a new attempt, or to dead letters when that was their last attempt, or to cancelled when a
-- cancel was requested. Returns how many were rescued.
CREATE FUNCTION sluice.rescue_expired(p_limit integer DEFAULT 1000)
RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, sluice AS $$
    -- One statement (data-modifying CTEs), so an idle rescue costs one index probe and no
    -- catalog writes.
    WITH expired AS (
        SELECT j.id FROM sluice.jobs j
         WHERE j.state = 'running' AND j.lease_expires_at < now()
         ORDER BY j.lease_expires_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    ), upd AS (
        UPDATE sluice.jobs j
           SET state = CASE WHEN j.cancel_requested THEN 'cancelled'::sluice.job_state
                            WHEN j.attempt >= j.max_attempts THEN 'dead'::sluice.job_state
                            ELSE 'queued'::sluice.job_state END,
               finished_at = CASE WHEN j.cancel_requested OR j.attempt >= j.max_attempts THEN now() END,
               run_at = now(), lease_owner = NULL, lease_expires_at = NULL,
               last_error_class = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'internal' END,
               last_error = 'the worker running attempt ' || j.attempt || ' stopped renewing its lease (' ||
                            coalesce(j.lease_owner, '?') || ')'
          FROM expired
         WHERE j.id = expired.id
        RETURNING j.id, j.tenant, j.lane, j.state, j.attempt, j.started_at, j.last_error
    ), att AS (
        INSERT INTO sluice.attempts (job_id, attempt, tenant, worker, started_at, finished_at, outcome, error_class, error_message)
        SELECT r.id, r.attempt, r.tenant, NULL, coalesce(r.started_at, now()), now(), 'lease_expired', 'internal', r.last_error
          FROM upd r
        ON CONFLICT (job_id, attempt) DO NOTHING
    ), dl AS (
        INSERT INTO sluice.dead_letters (job_id, tenant, error_class, reason, last_error, attempts)
        SELECT r.id, r.tenant, 'internal', 'lease expired on the last attempt', r.last_error, r.attempt
          FROM upd r WHERE r.state = 'dead'
        ON CONFLICT (job_id) DO NOTHING
    )
    SELECT count(*)::integer FROM upd r,
           LATERAL (SELECT CASE WHEN r.state = 'queued' THEN pg_notify('sluice_jobs', r.lane::text)
                                ELSE pg_notify('sluice_done', r.id::text) END) n
$$;

-- Puts a worker's unfinished jobs back in the queue without consuming an attempt (graceful
-- shutdown past its grace period). Only jobs the worker still owns at that attempt move.
CREATE FUNCTION sluice.release(p_worker text, p_ids uuid[], p_attempts integer[])
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, sluice AS $$
DECLARE
    n integer;
BEGIN
    WITH rel AS (
        UPDATE sluice.jobs j
           SET state = 'queued', attempt = j.attempt - 1, run_at = now(), lease_owner = NULL,
               lease_expires_at = NULL, started_at = NULL
          FROM unnest(p_ids, p_attempts) AS i(id, attempt)
         WHERE j.id = i.id AND j.attempt = i.attempt AND j.state = 'running' AND j.lease_owner = p_worker
        RETURNING j.lane
    )
    SELECT count(*) INTO n FROM rel;
    IF n > 0 THEN
        PERFORM pg_notify('sluice_jobs', 'any');
    END IF;
    RETURN n;
END
$$;

-- Records the outcome of a batch of attempts in one transaction (group commit). Each item:
--   {"id", "attempt", "outcome": "succeeded"|"retry"|"dead"|"cancelled", "started_at",
--    "duration_ms", "http_status", "error_class", "error_message", "retry_at" (retry),
--    "reason" (dead), "usage": {"input","output","cache_read","cache_write"}, "cost_usd",
--    "result": {"output_text","tool_calls","finish_reason","raw_response","provider","model",
--               "latency_ms","ttft_ms"} (succeeded)}
-- An item is applied only if p_worker still holds the job's lease at that attempt and the job
-- is running, so a stale worker that wakes up after a rescue cannot overwrite anything.
-- Returns the ids that were applied.
CREATE FUNCTION sluice.finish_attempts(p_worker text, p_items jsonb)
RETURNS SETOF uuid
LANGUAGE sql SET search_path = pg_catalog, sluice AS $$
    -- One statement (data-modifying CTEs): no temporary table, no catalog writes per group.
    WITH items AS (
        SELECT (x.item ->> 'id')::uuid AS id, (x.item ->> 'attempt')::integer AS attempt,
               x.item ->> 'outcome' AS outcome, x.item
          FROM jsonb_array_elements(p_items) AS x(item)
    ), upd AS (
        UPDATE sluice.jobs j
           SET state = CASE i.outcome WHEN 'succeeded' THEN 'succeeded'::sluice.job_state
                                      WHEN 'retry' THEN 'queued'::sluice.job_state
                                      WHEN 'cancelled' THEN 'cancelled'::sluice.job_state
                                      ELSE 'dead'::sluice.job_state END,
               finished_at = CASE WHEN i.outcome = 'retry' THEN NULL ELSE now() END,
               run_at = CASE WHEN i.outcome = 'retry' THEN coalesce((i.item ->> 'retry_at')::timestamptz, now()) ELSE j.run_at END,
               lease_owner = NULL, lease_expires_at = NULL,
               last_error_class = CASE WHEN i.outcome = 'succeeded' THEN NULL ELSE i.item ->> 'error_class' END,
               last_error = CASE WHEN i.outcome = 'succeeded' THEN NULL ELSE i.item ->> 'error_message' END
          FROM items i
         WHERE j.id = i.id AND j.attempt = i.attempt AND j.state = 'running' AND j.lease_owner = p_worker
        RETURNING j.id, j.tenant, j.lane, j.attempt, i.outcome, i.item, j.state
    ), att AS (
        INSERT INTO sluice.attempts (job_id, attempt, tenant, worker, started_at, finished_at, outcome, http_status,
                                     error_class, error_message, input_tokens, output_tokens, cache_read_tokens,
                                     cache_write_tokens, cost_usd, duration_ms)
        SELECT f.id, f.attempt, f.tenant, p_worker, coalesce((f.item ->> 'started_at')::timestamptz, now()), now(),
               CASE f.outcome WHEN 'succeeded' THEN 'succeeded' WHEN 'cancelled' THEN 'cancelled' ELSE 'failed' END,
               (f.item ->> 'http_status')::integer, f.item ->> 'error_class', f.item ->> 'error_message',
               (f.item #>> '{usage,input}')::integer, (f.item #>> '{usage,output}')::integer,
               (f.item #>> '{usage,cache_read}')::integer, (f.item #>> '{usage,cache_write}')::integer,
               (f.item ->> 'cost_usd')::numeric, (f.item ->> 'duration_ms')::double precision
          FROM upd f
        ON CONFLICT (job_id, attempt) DO NOTHING
    ), res AS (
        INSERT INTO sluice.results (job_id, tenant, output_text, tool_calls, finish_reason, raw_response, input_tokens,
                                    output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, provider, model,
                                    latency_ms, ttft_ms)
        SELECT f.id, f.tenant, f.item #>> '{result,output_text}', coalesce(f.item #> '{result,tool_calls}', '[]'),
               f.item #>> '{result,finish_reason}', f.item #> '{result,raw_response}',
               coalesce((f.item #>> '{usage,input}')::integer, 0), coalesce((f.item #>> '{usage,output}')::integer, 0),
               coalesce((f.item #>> '{usage,cache_read}')::integer, 0), coalesce((f.item #>> '{usage,cache_write}')::integer, 0),
               (f.item ->> 'cost_usd')::numeric, f.item #>> '{result,provider}', f.item #>> '{result,model}',
               (f.item #>> '{result,latency_ms}')::double precision, (f.item #>> '{result,ttft_ms}')::double precision
          FROM upd f WHERE f.outcome = 'succeeded'
        ON CONFLICT (job_id) DO NOTHING
    ), dl AS (
        INSERT INTO sluice.dead_letters (job_id, tenant, error_class, reason, last_error, attempts)
        SELECT f.id, f.tenant, coalesce(f.item ->> 'error_class', 'internal'),
               coalesce(f.item ->> 'reason', 'failed'), f.item ->> 'error_message', f.attempt
          FROM upd f WHERE f.state = 'dead'
        ON CONFLICT (job_id) DO UPDATE SET error_class = excluded.error_class, reason = excluded.reason,
            last_error = excluded.last_error, attempts = excluded.attempts, dead_at = now()
    ), spend AS (
        -- Spend, for budgets: every attempt that reported usage counts, failed ones too.
        INSERT INTO sluice.usage_daily AS u (tenant, day, tokens, cost_usd, requests)
        SELECT f.tenant, (now() AT TIME ZONE 'UTC')::date,
               sum(coalesce((f.item #>> '{usage,input}')::bigint, 0) + coalesce((f.item #>> '{usage,output}')::bigint, 0)
                   + coalesce((f.item #>> '{usage,cache_read}')::bigint, 0) + coalesce((f.item #>> '{usage,cache_write}')::bigint, 0)),
               coalesce(sum((f.item ->> 'cost_usd')::numeric), 0), count(*)
          FROM upd f
         GROUP BY f.tenant
         ORDER BY f.tenant
        ON CONFLICT (tenant, day) DO UPDATE
           SET tokens = u.tokens + excluded.tokens, cost_usd = u.cost_usd + excluded.cost_usd,
               requests = u.requests + excluded.requests
    )
    SELECT f.id FROM upd f,
           LATERAL (SELECT CASE WHEN f.outcome <> 'retry' THEN pg_notify('sluice_done', f.id::text)
                                WHEN coalesce((f.item ->> 'retry_at')::timestamptz, now()) <= now()
                                    THEN pg_notify('sluice_jobs', f.lane::text) END) n
$$;

-- Deletes finished jobs (with their results and attempts) older than the retention period, in
-- a batch of at most p_limit rows. Dead jobs (and their dead letters) are kept until
-- p_dead_before. Called repeatedly by the elected pruner until it returns less than p_limit.
CREATE FUNCTION sluice.prune(p_before timestamptz, p_dead_before timestamptz, p_limit integer DEFAULT 1000)
RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, sluice AS $$
    WITH victims AS (
        SELECT j.id FROM sluice.jobs j
         WHERE j.finished_at IS NOT NULL
           AND ((j.state <> 'dead' AND j.finished_at < p_before) OR (j.state = 'dead' AND j.finished_at < p_dead_before))
         ORDER BY j.finished_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    ), del AS (
        DELETE FROM sluice.jobs j USING victims v WHERE j.id = v.id RETURNING 1
    )
    SELECT count(*)::integer FROM del
$$;
