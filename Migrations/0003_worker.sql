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
-- p_reserved of the p_limit slots are privileged: they may only take interactive jobs and jobs
-- of light tenants (a tenant whose running jobs, counting the ones of this claim, stay within
-- p_reserved). So a worker whose slots are full of one tenant's backlog still starts an
-- interactive job, or a quiet tenant's job, as soon as it arrives.
--
-- With many tenants the claim considers a window of at most p_window of them (default 256):
-- each claim continues after the tenant where the previous claim's window ended and wraps
-- around (sluice.claim_cursor), so every tenant is reached within ceil(T / p_window) claims,
-- and a claim costs the same with 10,000 tenants as with 256 (it was linear in the number of
-- tenants with queued jobs: ~27 ms per claim at 1,000). Tenants with runnable interactive jobs
-- are always considered, wherever the window is (found through jobs_interactive_idx). With at
-- most p_window tenants every claim sees all of them, as before.
--
-- jit = off on these functions: with a large backlog the planner's row estimates for the
-- LIMITed lateral scans are in the tens of thousands, which crosses jit_above_cost; compiling
-- the plan then cost ~50 ms per claim for a statement that runs in ~10 ms.
-- Where the last claim's window of tenants ended (one row; written under the claim lock).
CREATE TABLE sluice.claim_cursor (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    tenant    text COLLATE "C" NOT NULL DEFAULT ''
);
INSERT INTO sluice.claim_cursor DEFAULT VALUES;

CREATE FUNCTION sluice.claim(p_worker text, p_limit integer, p_lanes sluice.lane[], p_tenants text[],
                             p_lease interval, p_starvation interval DEFAULT interval '10 seconds',
                             p_reserved integer DEFAULT 0, p_window integer DEFAULT 256)
RETURNS SETOF sluice.jobs
-- force_generic_plan: with the window's tenants as an array parameter the plan cache judged
-- custom plans cheaper and planned the claim statement again on every call (+0.6 ms a claim).
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_window text[];
    v_interactive text[];
BEGIN
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(7305692411130281001);
    -- The claim commits without waiting for its WAL flush, so the lock above is released
    -- ~1 ms sooner. Safe: if the server crashes before the flush, the claim is undone and the
    -- job is queued again; the first worker's completion is then refused (lease owner and
    -- attempt guard), so the job still gets exactly one result (at-least-once calls).
    PERFORM set_config('synchronous_commit', 'off', true);

    -- The window: tenants with queued jobs after the cursor, then from the start up to the
    -- cursor, at most p_window in all. A skip scan over the claim index. (ORDER BY tenant, lane,
    -- which only the claim index provides: ordered by tenant alone, the planner at times walked
    -- the tenant listing index, i.e. through all of the first tenant's finished jobs, and
    -- claims slowed down as they accumulated: 0.8 -> 1.8 ms after 12k in one test.)
    WITH RECURSIVE cur AS (
        SELECT c.tenant AS after FROM sluice.claim_cursor c
    ), after_cursor AS (
        (SELECT j.tenant, 1 AS n FROM sluice.jobs j
          WHERE j.state = 'queued' AND j.tenant > (SELECT c.after FROM cur c)
            AND (p_tenants IS NULL OR j.tenant = ANY (p_tenants))
          ORDER BY j.tenant, j.lane LIMIT 1)
        UNION ALL
        SELECT (SELECT j.tenant FROM sluice.jobs j
                 WHERE j.state = 'queued' AND j.tenant > r.tenant AND (p_tenants IS NULL OR j.tenant = ANY (p_tenants))
                 ORDER BY j.tenant, j.lane LIMIT 1), r.n + 1
          FROM after_cursor r WHERE r.tenant IS NOT NULL AND r.n < p_window
    ), taken AS (
        SELECT count(*) AS n FROM after_cursor a WHERE a.tenant IS NOT NULL
    ), wrapped AS (
        (SELECT j.tenant, 1 AS n FROM sluice.jobs j
          WHERE j.state = 'queued' AND j.tenant <= (SELECT c.after FROM cur c)
            AND (p_tenants IS NULL OR j.tenant = ANY (p_tenants))
            AND (SELECT c.after FROM cur c) <> '' AND (SELECT t.n FROM taken t) < p_window
          ORDER BY j.tenant, j.lane LIMIT 1)
        UNION ALL
        SELECT (SELECT j.tenant FROM sluice.jobs j
                 WHERE j.state = 'queued' AND j.tenant > r.tenant AND j.tenant <= (SELECT c.after FROM cur c)
                   AND (p_tenants IS NULL OR j.tenant = ANY (p_tenants))
                 ORDER BY j.tenant, j.lane LIMIT 1), r.n + 1
          FROM wrapped r WHERE r.tenant IS NOT NULL AND r.n < p_window - (SELECT t.n FROM taken t)
    )
    SELECT array_agg(w.tenant ORDER BY w.part, w.tenant) INTO v_window
      FROM (SELECT a.tenant, 1 AS part FROM after_cursor a WHERE a.tenant IS NOT NULL
            UNION ALL
            SELECT b.tenant, 2 FROM wrapped b WHERE b.tenant IS NOT NULL) w;
    -- A full window may have left tenants out: the next claim starts after its last tenant, and
    -- this one also takes the tenants of the oldest runnable interactive jobs, inside the
    -- window or not. (A window that is not full holds every tenant with queued jobs.)
    IF coalesce(array_length(v_window, 1), 0) >= p_window THEN
        UPDATE sluice.claim_cursor SET tenant = v_window[array_length(v_window, 1)];
    END IF;
    IF coalesce(array_length(v_window, 1), 0) >= p_window AND 'interactive' = ANY (p_lanes) THEN
        SELECT array_agg(DISTINCT i.tenant) INTO v_interactive
          FROM (SELECT j.tenant FROM sluice.jobs j
                 WHERE j.state = 'queued' AND j.lane = 'interactive' AND j.run_at <= now()
                   AND (p_tenants IS NULL OR j.tenant = ANY (p_tenants))
                 ORDER BY j.run_at, j.id LIMIT p_limit) i;
    END IF;

    RETURN QUERY
    WITH ready_tenants AS (
        SELECT DISTINCT u.tenant FROM unnest(coalesce(v_window, '{}') || coalesce(v_interactive, '{}')) AS u(tenant)
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
    ), per_tenant AS (
        -- Each tenant capped at its free slots; a job is privileged when it is interactive or
        -- its tenant is light (running jobs, counting this claim's, within p_reserved).
        SELECT o.id, o.pos, o.lane = 'interactive' OR a.running + o.nth <= greatest(p_reserved, 0) AS privileged
          FROM (SELECT o.*, row_number() OVER (PARTITION BY o.tenant ORDER BY o.pos) AS nth FROM ordered o) o
          JOIN allowance a ON a.tenant = o.tenant
         WHERE o.nth <= a.free
    ), capped AS (
        -- The first p_limit − p_reserved jobs in order take the ordinary slots; the reserved
        -- slots after them go to privileged jobs only.
        SELECT p.id, p.pos
          FROM (SELECT p.*, row_number() OVER (ORDER BY p.pos) AS rank FROM per_tenant p) p
         WHERE p.rank <= p_limit - greatest(p_reserved, 0) OR p.privileged
         ORDER BY p.pos
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
LANGUAGE sql SET search_path = pg_catalog, sluice SET jit = off AS $$
    WITH renewed AS (
        UPDATE sluice.jobs j SET lease_expires_at = now() + p_lease
         WHERE j.id = ANY (p_ids) AND j.state = 'running' AND j.lease_owner = p_worker
        RETURNING j.id, j.cancel_requested
    )
    SELECT i.id, r.id IS NOT NULL, coalesce(r.cancel_requested, false)
      FROM unnest(p_ids) AS i(id) LEFT JOIN renewed r ON r.id = i.id
$$;

-- Tells waiters (SluiceClient.wait, channel sluice_done) that these jobs reached a terminal
-- state: one notification per 200 ids, comma-separated (a payload holds < 8000 bytes), not one
-- per job. Returns how many notifications were sent.
CREATE FUNCTION sluice.notify_done(p_ids uuid[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, sluice AS $$
BEGIN
    RETURN (SELECT count(pg_notify('sluice_done', g.ids))::integer
              FROM (SELECT string_agg(i.id::text, ',') AS ids
                      FROM unnest(p_ids) WITH ORDINALITY AS i(id, n)
                     GROUP BY (i.n - 1) / 200) g);
END
$$;

-- Jobs whose lease expired (their worker died or lost the database) go back to the queue as
-- a new attempt, or to dead letters when that was their last attempt, or to cancelled when a
-- cancel was requested. Returns how many were rescued.
CREATE FUNCTION sluice.rescue_expired(p_limit integer DEFAULT 1000)
RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, sluice SET jit = off AS $$
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
    ), done_notes AS (
        SELECT sluice.notify_done(array_agg(r.id)) AS sent FROM upd r WHERE r.state <> 'queued'
    ), lane_notes AS (
        SELECT count(pg_notify('sluice_jobs', l.lane)) AS sent
          FROM (SELECT DISTINCT r.lane::text AS lane FROM upd r WHERE r.state = 'queued') l
    )
    SELECT count(*)::integer FROM upd r CROSS JOIN done_notes CROSS JOIN lane_notes
$$;

-- Puts a worker's unfinished jobs back in the queue without consuming an attempt (graceful
-- shutdown past its grace period). Only jobs the worker still owns at that attempt move.
CREATE FUNCTION sluice.release(p_worker text, p_ids uuid[], p_attempts integer[])
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off AS $$
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
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off AS $$
BEGIN
    -- One statement (data-modifying CTEs): no temporary table, no catalog writes per group.
    -- PL/pgSQL rather than a SQL function so the statement's plan is cached per session (a
    -- SQL function's body is parsed and planned on every call).
    RETURN QUERY
    WITH items AS (
        -- Each item is decoded once into typed columns (jsonb_to_recordset), not re-read
        -- field by field in every CTE below.
        SELECT x.id, x.attempt, x.outcome, x.started_at, x.duration_ms, x.http_status, x.error_class,
               left(x.error_message, 2000) AS error_message, x.retry_at, x.reason, x.cost_usd, x.result,
               (x.usage ->> 'input')::integer AS input_tokens, (x.usage ->> 'output')::integer AS output_tokens,
               (x.usage ->> 'cache_read')::integer AS cache_read_tokens,
               (x.usage ->> 'cache_write')::integer AS cache_write_tokens
          FROM jsonb_to_recordset(p_items) AS x(id uuid, attempt integer, outcome text, started_at timestamptz,
                                                duration_ms double precision, http_status integer, error_class text,
                                                error_message text, retry_at timestamptz, reason text, usage jsonb,
                                                cost_usd numeric, result jsonb)
    ), upd AS (
        UPDATE sluice.jobs j
           SET state = CASE i.outcome WHEN 'succeeded' THEN 'succeeded'::sluice.job_state
                                      WHEN 'retry' THEN 'queued'::sluice.job_state
                                      WHEN 'cancelled' THEN 'cancelled'::sluice.job_state
                                      ELSE 'dead'::sluice.job_state END,
               finished_at = CASE WHEN i.outcome = 'retry' THEN NULL ELSE now() END,
               run_at = CASE WHEN i.outcome = 'retry' THEN coalesce(i.retry_at, now()) ELSE j.run_at END,
               lease_owner = NULL, lease_expires_at = NULL,
               last_error_class = CASE WHEN i.outcome = 'succeeded' THEN NULL ELSE i.error_class END,
               last_error = CASE WHEN i.outcome = 'succeeded' THEN NULL ELSE i.error_message END
          FROM items i
         WHERE j.id = i.id AND j.attempt = i.attempt AND j.state = 'running' AND j.lease_owner = p_worker
        RETURNING j.id, j.tenant, j.lane, j.attempt, j.state, i.outcome, i.started_at, i.duration_ms, i.http_status,
                  i.error_class, i.error_message, i.retry_at, i.reason, i.cost_usd, i.result, i.input_tokens,
                  i.output_tokens, i.cache_read_tokens, i.cache_write_tokens
    ), att AS (
        INSERT INTO sluice.attempts (job_id, attempt, tenant, worker, started_at, finished_at, outcome, http_status,
                                     error_class, error_message, input_tokens, output_tokens, cache_read_tokens,
                                     cache_write_tokens, cost_usd, duration_ms)
        -- finished_at is when the attempt ended (start + duration, the worker's clock), not
        -- when its buffered outcome was written: a Retry-After counts from the former.
        SELECT f.id, f.attempt, f.tenant, p_worker, coalesce(f.started_at, now()),
               coalesce(f.started_at + make_interval(secs => f.duration_ms / 1000), now()),
               CASE f.outcome WHEN 'succeeded' THEN 'succeeded' WHEN 'cancelled' THEN 'cancelled' ELSE 'failed' END,
               f.http_status, f.error_class, f.error_message, f.input_tokens, f.output_tokens,
               f.cache_read_tokens, f.cache_write_tokens, f.cost_usd, f.duration_ms
          FROM upd f
        ON CONFLICT (job_id, attempt) DO NOTHING
    ), res AS (
        INSERT INTO sluice.results (job_id, tenant, output_text, tool_calls, finish_reason, raw_response, input_tokens,
                                    output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, provider, model,
                                    latency_ms, ttft_ms)
        SELECT f.id, f.tenant, f.result ->> 'output_text', coalesce(f.result -> 'tool_calls', '[]'),
               f.result ->> 'finish_reason', f.result -> 'raw_response',
               coalesce(f.input_tokens, 0), coalesce(f.output_tokens, 0),
               coalesce(f.cache_read_tokens, 0), coalesce(f.cache_write_tokens, 0),
               f.cost_usd, f.result ->> 'provider', f.result ->> 'model',
               (f.result ->> 'latency_ms')::double precision, (f.result ->> 'ttft_ms')::double precision
          FROM upd f WHERE f.outcome = 'succeeded'
        ON CONFLICT (job_id) DO NOTHING
    ), dl AS (
        INSERT INTO sluice.dead_letters (job_id, tenant, error_class, reason, last_error, attempts)
        SELECT f.id, f.tenant, coalesce(f.error_class, 'internal'), coalesce(f.reason, 'failed'), f.error_message, f.attempt
          FROM upd f WHERE f.state = 'dead'
        ON CONFLICT (job_id) DO UPDATE SET error_class = excluded.error_class, reason = excluded.reason,
            last_error = excluded.last_error, attempts = excluded.attempts, dead_at = now()
    ), spend AS (
        -- Spend, for budgets: every attempt that reported usage counts, failed ones too.
        INSERT INTO sluice.usage_daily AS u (tenant, day, tokens, cost_usd, requests)
        SELECT f.tenant, (now() AT TIME ZONE 'UTC')::date,
               sum(coalesce(f.input_tokens, 0)::bigint + coalesce(f.output_tokens, 0) + coalesce(f.cache_read_tokens, 0)
                   + coalesce(f.cache_write_tokens, 0)),
               coalesce(sum(f.cost_usd), 0), count(*)
          FROM upd f
         GROUP BY f.tenant
         ORDER BY f.tenant
        ON CONFLICT (tenant, day) DO UPDATE
           SET tokens = u.tokens + excluded.tokens, cost_usd = u.cost_usd + excluded.cost_usd,
               requests = u.requests + excluded.requests
    ), done_notes AS (
        -- Waiters (SluiceClient.wait) learn of finished jobs in batches of 200 ids.
        SELECT sluice.notify_done(array_agg(f.id)) AS sent FROM upd f WHERE f.outcome <> 'retry'
    ), lane_notes AS (
        -- Retries due now wake workers once per lane.
        SELECT count(pg_notify('sluice_jobs', l.lane)) AS sent
          FROM (SELECT DISTINCT f.lane::text AS lane FROM upd f
                 WHERE f.outcome = 'retry' AND coalesce(f.retry_at, now()) <= now()) l
    )
    SELECT f.id FROM upd f CROSS JOIN done_notes CROSS JOIN lane_notes;
END
$$;

-- Deletes finished jobs (with their results and attempts) older than the retention period, in
-- a batch of at most p_limit rows. Dead jobs (and their dead letters) are kept until
-- p_dead_before. Called repeatedly by the elected pruner until it returns less than p_limit.
CREATE FUNCTION sluice.prune(p_before timestamptz, p_dead_before timestamptz, p_limit integer DEFAULT 1000)
RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, sluice SET jit = off AS $$
    WITH victims AS (
        SELECT j.id FROM sluice.jobs j
         WHERE j.finished_at IS NOT NULL
           AND ((j.state <> 'dead' AND j.finished_at < p_before) OR (j.state = 'dead' AND j.finished_at < p_dead_before))
         ORDER BY j.finished_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    ), del AS (
        DELETE FROM sluice.jobs j USING victims v WHERE j.id = v.id RETURNING j.id
    ), del_results AS (
        -- No foreign keys point at jobs (0001 explains why): a job's rows go with it here.
        DELETE FROM sluice.results r USING del d WHERE r.job_id = d.id
    ), del_attempts AS (
        DELETE FROM sluice.attempts a USING del d WHERE a.job_id = d.id
    ), del_dead AS (
        DELETE FROM sluice.dead_letters x USING del d WHERE x.job_id = d.id
    )
    SELECT count(*)::integer FROM del
$$;
