-- Repeatable migration (see docs/ARCHITECTURE.md, "Schema evolution"). The R files are applied
-- in name order, after the versioned ones, whenever any of them changed. Edit in place; every
-- statement must be safe to run again (CREATE OR REPLACE; DROP FUNCTION IF EXISTS first when a
-- signature or return type changes). Tables, types, indexes, triggers, policies and grants
-- belong in new versioned files.
--
-- Completion (finish_attempts), release on shutdown, rescue of expired leases, done
-- notifications and retention.
--
-- Lock order (docs/ARCHITECTURE.md, "Lock order"): a statement that may wait for job rows locks
-- them in ascending id: either first (SELECT … ORDER BY id FOR NO KEY UPDATE) and updates them
-- after, or (finish_attempts) by an UPDATE driven by its items sorted by id through a nested
-- loop; a statement that takes them with SKIP LOCKED never waits for one. Then, in this order: the
-- rows it writes in attempts, results and dead_letters (keyed by those jobs), usage_daily (by
-- tenant), and the queue-depth counters (by tenant, in the statement-level trigger at the end).

-- Tells waiters (SluiceClient.wait, channel sluice_done) that these jobs reached a terminal
-- state: one notification per 200 ids, comma-separated (a payload holds < 8000 bytes), not one
-- per job. Returns how many notifications were sent.
CREATE OR REPLACE FUNCTION sluice.notify_done(p_ids uuid[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, sluice AS $$
BEGIN
    RETURN (SELECT count(pg_notify('sluice_done', g.ids))::integer
              FROM (SELECT string_agg(i.id::text, ',') AS ids
                      FROM unnest(p_ids) WITH ORDINALITY AS i(id, n)
                     GROUP BY (i.n - 1) / 200) g);
END
$$;

-- The same, committed asynchronously (synchronous_commit = off for this transaction), for a
-- caller that has just committed the terminal transitions of these jobs in a transaction that
-- did not notify (the worker: sluice.finish_attempts(…, p_notify => false)). PostgreSQL
-- serialises the commits of notifying transactions (a database-wide lock held through the
-- commit's WAL flush), so a completion group that notified inside its synchronously committed
-- transaction made every other notifying commit (enqueue wake-ups, other completions) queue
-- behind its fsync; here the lock is held only for the moment the notification is queued.
-- Waiters cannot miss a job this way: they LISTEN and register before reading the job, and the
-- notification is sent after the job's commit (docs/ARCHITECTURE.md, "Wake-ups").
CREATE OR REPLACE FUNCTION sluice.notify_done_async(p_ids uuid[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, sluice AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN sluice.notify_done(p_ids);
END
$$;

-- Jobs whose lease expired (their worker died or lost the database) go back to the queue as
-- a new attempt, or to dead letters when that was their last attempt, or to cancelled when a
-- cancel was requested. Returns how many were rescued.
--
-- p_every paces the sweep cluster-wide (workers pass half their rescue interval): the sweep
-- runs only if no sweep started within p_every (sluice.sweeps, 0013) and none is running now;
-- otherwise it returns 0 at once. So the cost of rescue does not grow with the number of
-- worker processes. NULL (SQL callers, tests) sweeps now.
--
-- A lease ends at the later of lease_expires_at (written by the claim, a key of
-- jobs_running_idx) and lease_renewed_until (written by renewals, in no index, so a renewal
-- is a HOT update: 0013, 0014). The sweep reads through the index only the entries whose
-- claimed lease has passed (the key filters them without a visit to the row) and checks the
-- renewal on those rows: the jobs running longer than their first lease, and once each the
-- entries of jobs finished since the last vacuum (a plain index scan marks those dead; a
-- bitmap scan marks nothing and would visit them on every sweep: enable_bitmapscan = off).
-- Never the history (enable_seqscan = off).
DROP FUNCTION IF EXISTS sluice.rescue_expired(integer);
CREATE OR REPLACE FUNCTION sluice.rescue_expired(p_limit integer DEFAULT 1000, p_every interval DEFAULT NULL)
RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, sluice SET jit = off SET enable_seqscan = off SET enable_bitmapscan = off AS $$
    -- One statement (data-modifying CTEs): no catalog writes. SKIP LOCKED: never waits for a
    -- job row (a job being renewed or finished right now is not expired for long) nor for the
    -- pacing row, so it cannot be part of a lock cycle.
    WITH turn AS (
        UPDATE sluice.sweeps s SET swept_at = now()
         WHERE p_every IS NOT NULL AND s.name = 'rescue' AND s.swept_at <= now() - p_every
           AND s.name = (SELECT k.name FROM sluice.sweeps k WHERE k.name = 'rescue' FOR UPDATE SKIP LOCKED)
        RETURNING s.name
    ), expired AS (
        SELECT j.id FROM sluice.jobs j
         WHERE (p_every IS NULL OR EXISTS (SELECT 1 FROM turn))
           AND j.state = 'running' AND j.lease_expires_at < now()
           AND (j.lease_renewed_until IS NULL OR j.lease_renewed_until < now())
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

-- Rescues the running jobs of one worker process that is known to be dead (its supervisor saw
-- it exit abnormally: a signal, a crash, a non-zero status), without waiting for their leases.
-- Each job goes back to the queue as a new attempt (or to dead letters when that was its last
-- attempt, or to cancelled if a cancel was requested), exactly as sluice.rescue_expired does,
-- with an attempts row 'interrupted' that says why (p_reason). Only jobs whose lease holder is
-- exactly p_worker move; the dead process's registry row is removed. Returns how many jobs
-- were rescued.
--
-- Exactly one result per job: the dead process can no longer renew or finish these attempts
-- (finish_attempts refuses an item whose lease owner is not its worker), and a statement the
-- dead process left running in its backend either commits before this one takes the row (the
-- job is then no longer running under p_worker and is left alone) or after it (and finds
-- nothing it owns). Lock order (docs/ARCHITECTURE.md, "Lock order"): waits for the rows, in
-- ascending id, then updates them; lock_timeout bounds the wait (the lease covers what is
-- left). Found through the running-jobs index (the running set, never the history).
CREATE OR REPLACE FUNCTION sluice.rescue_worker(p_worker text, p_reason text)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off SET enable_seqscan = off
SET lock_timeout = '5s' AS $$
DECLARE
    n integer;
BEGIN
    IF p_worker IS NULL OR p_worker = '' THEN
        RAISE EXCEPTION 'rescue_worker: the worker id must not be empty'
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'worker', CONSTRAINT = 'required';
    END IF;
    WITH locked AS (
        SELECT j.id FROM sluice.jobs j
         WHERE j.state = 'running' AND j.lease_owner = p_worker
         ORDER BY j.id
           FOR NO KEY UPDATE OF j
    ), upd AS (
        UPDATE sluice.jobs j
           SET state = CASE WHEN j.cancel_requested THEN 'cancelled'::sluice.job_state
                            WHEN j.attempt >= j.max_attempts THEN 'dead'::sluice.job_state
                            ELSE 'queued'::sluice.job_state END,
               finished_at = CASE WHEN j.cancel_requested OR j.attempt >= j.max_attempts THEN now() END,
               run_at = now(), lease_owner = NULL, lease_expires_at = NULL,
               last_error_class = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'internal' END,
               last_error = 'the worker process running attempt ' || j.attempt || ' died (' ||
                            p_worker || ': ' || left(coalesce(p_reason, 'unknown'), 200) || ')'
         WHERE j.id = ANY (ARRAY(SELECT l.id FROM locked l)) AND j.state::text = 'running' AND j.lease_owner = p_worker
        RETURNING j.id, j.tenant, j.lane, j.state, j.attempt, j.started_at, j.last_error
    ), att AS (
        INSERT INTO sluice.attempts (job_id, attempt, tenant, worker, started_at, finished_at, outcome, error_class, error_message)
        SELECT r.id, r.attempt, r.tenant, p_worker, coalesce(r.started_at, now()), now(), 'interrupted', 'internal', r.last_error
          FROM upd r
        ON CONFLICT (job_id, attempt) DO NOTHING
    ), dl AS (
        INSERT INTO sluice.dead_letters (job_id, tenant, error_class, reason, last_error, attempts)
        SELECT r.id, r.tenant, 'internal', 'worker process died on the last attempt', r.last_error, r.attempt
          FROM upd r WHERE r.state = 'dead'
        ON CONFLICT (job_id) DO NOTHING
    ), done_notes AS (
        SELECT sluice.notify_done(array_agg(r.id)) AS sent FROM upd r WHERE r.state <> 'queued'
    ), lane_notes AS (
        SELECT count(pg_notify('sluice_jobs', l.lane)) AS sent
          FROM (SELECT DISTINCT r.lane::text AS lane FROM upd r WHERE r.state = 'queued') l
    )
    SELECT count(*)::integer INTO n FROM upd r CROSS JOIN done_notes CROSS JOIN lane_notes;
    DELETE FROM sluice.workers w WHERE w.id = p_worker;
    RETURN n;
END
$$;

-- Puts a worker's unfinished jobs back in the queue without consuming an attempt (graceful
-- shutdown past its grace period). Only jobs the worker still owns at that attempt move.
CREATE OR REPLACE FUNCTION sluice.release(p_worker text, p_ids uuid[], p_attempts integer[])
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off SET enable_seqscan = off AS $$
DECLARE
    n integer;
BEGIN
    WITH locked AS (
        -- The lock order: rows first, by id (see the top of this file); found by primary key
        -- only (as in finish_attempts).
        SELECT j.id FROM sluice.jobs j
         WHERE j.id = ANY (p_ids) AND j.state::text = 'running' AND j.lease_owner = p_worker
         ORDER BY j.id
           FOR NO KEY UPDATE OF j
    ), rel AS (
        UPDATE sluice.jobs j
           SET state = 'queued', attempt = j.attempt - 1, run_at = now(), lease_owner = NULL,
               lease_expires_at = NULL, started_at = NULL
          FROM unnest(p_ids, p_attempts) AS i(id, attempt)
         WHERE j.id = ANY (ARRAY(SELECT l.id FROM locked l)) AND i.id = j.id AND i.attempt = j.attempt
           AND j.state::text = 'running' AND j.lease_owner = p_worker
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
--    "duration_ms", "http_status", "error_class", "error_message", "retry_delay_ms" (retry:
--    runnable again that long after now(), the database's clock; else "retry_at"),
--    "reason" (dead), "usage": {"input","output","cache_read","cache_write"}, "cost_usd",
--    "target_provider", "target_model" (what was called), "fallback" (why a route job moves on
--    to another target), "skipped" (targets admission passed over), "route_step" and
--    "route_context_floor" (a route job's progress, kept on the job),
--    "result": {"output_text","tool_calls","finish_reason","raw_response","provider","model",
--               "latency_ms","ttft_ms"} (succeeded)}
-- An item is applied only if p_worker still holds the job's lease at that attempt and the job
-- is running, so a stale worker that wakes up after a rescue cannot overwrite anything.
-- Returns the ids that were applied.
--
-- p_notify: send sluice_done for the terminal ones inside this transaction (SQL callers). The
-- worker passes false and calls sluice.notify_done_async with the terminal ids once this has
-- committed, so its synchronous commit does not hold PostgreSQL's notify commit lock through
-- the WAL flush (see notify_done_async).
--
-- Jobs are found by primary key only (docs/ARCHITECTURE.md, "Plans and statistics"): the
-- statement's plan is cached per session, maybe from a moment the table was empty, and the
-- statistics of a table full of history put the running jobs at ~1 row, so the planner took
-- the partial index of running jobs and read all of it once per item (O(items x running)).
-- `state::text` keeps that index out, enable_seqscan = off keeps the plan from scanning the table.
DROP FUNCTION IF EXISTS sluice.finish_attempts(text, jsonb);
CREATE OR REPLACE FUNCTION sluice.finish_attempts(p_worker text, p_items jsonb, p_notify boolean DEFAULT true)
RETURNS SETOF uuid
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off SET enable_seqscan = off
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
    -- One statement (data-modifying CTEs): no temporary table, no catalog writes per group.
    -- PL/pgSQL rather than a SQL function so the statement's plan is cached per session (a
    -- SQL function's body is parsed and planned on every call).
    RETURN QUERY
    WITH items AS (
        -- Each item is decoded once into typed columns (jsonb_to_recordset), not re-read
        -- field by field in every CTE below.
        SELECT x.id, x.attempt, x.outcome, x.started_at, x.duration_ms, x.http_status, x.error_class,
               left(x.error_message, 2000) AS error_message,
               -- A retry's time comes from the database's clock plus the worker's delay, so a
               -- worker whose clock is off does not move it; retry_at (the worker's clock) only
               -- when no delay is given.
               coalesce(now() + make_interval(secs => x.retry_delay_ms / 1000), x.retry_at) AS retry_at,
               x.reason, x.cost_usd, x.result,
               x.target_provider, x.target_model, left(x.fallback, 500) AS fallback, x.skipped, x.route_step,
               x.route_context_floor,
               (x.usage ->> 'input')::integer AS input_tokens, (x.usage ->> 'output')::integer AS output_tokens,
               (x.usage ->> 'cache_read')::integer AS cache_read_tokens,
               (x.usage ->> 'cache_write')::integer AS cache_write_tokens
          FROM jsonb_to_recordset(p_items) AS x(id uuid, attempt integer, outcome text, started_at timestamptz,
                                                duration_ms double precision, http_status integer, error_class text,
                                                error_message text, retry_at timestamptz, retry_delay_ms double precision,
                                                reason text, usage jsonb, cost_usd numeric, result jsonb, target_provider text,
                                                target_model text, fallback text, skipped jsonb, route_step integer,
                                                route_context_floor integer)
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
               last_error = CASE WHEN i.outcome = 'succeeded' THEN NULL ELSE i.error_message END,
               route_step = coalesce(i.route_step, j.route_step),
               route_context_floor = coalesce(i.route_context_floor, j.route_context_floor)
          -- The lock order: the jobs' rows in ascending id (see the top of this file). The
          -- sorted items drive a nested loop of primary-key probes (hash and merge joins are
          -- off for this function, and a sorted subquery is not flattened), so each row is
          -- locked and updated in id order, in one visit. (Before, a SELECT … FOR NO KEY
          -- UPDATE locked them first and the UPDATE visited them again: a second probe and a
          -- lock record in the WAL per job, 3-7 % of claim+complete throughput.)
          FROM (SELECT * FROM items ORDER BY id) i
         WHERE j.id = i.id AND j.attempt = i.attempt
           AND j.state::text = 'running' AND j.lease_owner = p_worker
        RETURNING j.id, j.tenant, j.lane, j.attempt, j.state, i.outcome, i.started_at, i.duration_ms, i.http_status,
                  i.error_class, i.error_message, i.retry_at, i.reason, i.cost_usd, i.result, i.input_tokens,
                  i.output_tokens, i.cache_read_tokens, i.cache_write_tokens, i.target_provider, i.target_model,
                  i.fallback, i.skipped
    ), att AS (
        INSERT INTO sluice.attempts (job_id, attempt, tenant, worker, started_at, finished_at, outcome, http_status,
                                     error_class, error_message, input_tokens, output_tokens, cache_read_tokens,
                                     cache_write_tokens, cost_usd, duration_ms, provider, model, fallback, skipped)
        -- finished_at is when the attempt ended (start + duration, the worker's clock), not
        -- when its buffered outcome was written: a Retry-After counts from the former.
        SELECT f.id, f.attempt, f.tenant, p_worker, coalesce(f.started_at, now()),
               coalesce(f.started_at + make_interval(secs => f.duration_ms / 1000), now()),
               CASE f.outcome WHEN 'succeeded' THEN 'succeeded' WHEN 'cancelled' THEN 'cancelled' ELSE 'failed' END,
               f.http_status, f.error_class, f.error_message, f.input_tokens, f.output_tokens,
               f.cache_read_tokens, f.cache_write_tokens, f.cost_usd, f.duration_ms, f.target_provider, f.target_model,
               f.fallback, f.skipped
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
               -- The job's cost: this attempt's and every earlier attempt's that reported usage
               -- (a cut stream, a failure after tokens were spent), not only the successful one.
               -- (A first attempt has no earlier ones: no probe of attempts.)
               CASE WHEN f.cost_usd IS NULL THEN NULL WHEN f.attempt = 1 THEN f.cost_usd
                    ELSE f.cost_usd + coalesce((SELECT sum(a.cost_usd) FROM sluice.attempts a
                                                 WHERE a.job_id = f.id AND a.attempt < f.attempt), 0) END,
               f.result ->> 'provider', f.result ->> 'model',
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
        SELECT sluice.notify_done(array_agg(f.id)) AS sent FROM upd f WHERE p_notify AND f.outcome <> 'retry'
    ), lane_notes AS (
        -- Retries due now wake workers once per lane.
        SELECT count(pg_notify('sluice_jobs', l.lane)) AS sent
          FROM (SELECT DISTINCT f.lane::text AS lane FROM upd f
                 WHERE f.outcome = 'retry' AND coalesce(f.retry_at, now()) <= now()) l
    )
    SELECT f.id FROM upd f CROSS JOIN done_notes CROSS JOIN lane_notes;
END
$$;

-- Deletes finished jobs (with their results, attempts and dead letters) past their retention:
-- succeeded and cancelled jobs finished before p_before, dead ones before p_dead_before; at
-- most p_limit of each kind per call, oldest first. Called repeatedly by the elected pruner
-- until it returns less than p_limit.
--
-- Each kind is one bounded range read of its own partial index (0010): the scan starts at the
-- oldest entry and stops at the retention bound or the limit, so a round with nothing to
-- delete reads nothing, whatever the size of the history, and dead jobs (kept longer) are
-- never stepped over. enable_seqscan/bitmapscan off: no plan may become a scan of the history.
CREATE OR REPLACE FUNCTION sluice.prune(p_before timestamptz, p_dead_before timestamptz, p_limit integer DEFAULT 1000)
RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, sluice SET jit = off SET enable_seqscan = off SET enable_bitmapscan = off AS $$
    -- SKIP LOCKED: never waits for a job row (see the lock order at the top of this file).
    WITH done AS (
        SELECT j.id FROM sluice.jobs j
         WHERE j.state IN ('succeeded', 'cancelled') AND j.finished_at < p_before
         ORDER BY j.finished_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    ), dead AS (
        SELECT j.id FROM sluice.jobs j
         WHERE j.state = 'dead' AND j.finished_at < p_dead_before
         ORDER BY j.finished_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    ), victims AS (
        SELECT d.id FROM done d UNION ALL SELECT d.id FROM dead d
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
