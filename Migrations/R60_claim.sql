-- Repeatable migration (see docs/ARCHITECTURE.md, "Schema evolution"). The R files are applied
-- in name order, after the versioned ones, whenever any of them changed. Edit in place; every
-- statement must be safe to run again (CREATE OR REPLACE; DROP FUNCTION IF EXISTS first when a
-- signature or return type changes). Tables, types, indexes, triggers, policies and grants
-- belong in new versioned files.
--
-- Claiming and lease renewal.

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
--
-- Tenants held for a spent hard budget (tenants.held_until in the future) and those in
-- p_skip_tenants (tenants whose rate-limit bucket the calling worker knows to be empty until
-- it refills) are not considered, so their jobs stay queued without being claimed and put back.
DROP FUNCTION IF EXISTS sluice.claim(text, integer, sluice.lane[], text[], interval, interval, integer, integer);
CREATE OR REPLACE FUNCTION sluice.claim(p_worker text, p_limit integer, p_lanes sluice.lane[], p_tenants text[],
                             p_lease interval, p_starvation interval DEFAULT interval '10 seconds',
                             p_reserved integer DEFAULT 0, p_window integer DEFAULT 256,
                             p_skip_tenants text[] DEFAULT NULL)
RETURNS SETOF sluice.jobs
-- force_generic_plan: with the window's tenants as an array parameter the plan cache judged
-- custom plans cheaper and planned the claim statement again on every call (+0.6 ms a claim).
-- enable_seqscan = off, enable_bitmapscan = off: the generic plan is made once per session,
-- possibly while the table is empty, and every read of jobs here is an ordered index probe with
-- a LIMIT or a primary-key lookup. Made on the empty table, the tenant window's probe was a
-- bitmap scan of the whole claim index plus a sort for its LIMIT 1 (305 ms with 133k queued
-- jobs); no step of a claim may become a scan of the whole table or index (docs/ARCHITECTURE.md,
-- "Plans and statistics").
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
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
           AND (t.held_until IS NULL OR t.held_until <= now())
           AND (p_skip_tenants IS NULL OR NOT t.id = ANY (p_skip_tenants))
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
        -- One primary-key probe per chosen job, whatever the statistics say. (A join let the
        -- planner drive it from the claim index when its cached plan had been made while the
        -- queue was empty: every queued row against every chosen one, 1-11 s per claim after a
        -- burst until autovacuum analysed the table.) The lateral subquery with its row lock
        -- cannot be flattened, so the chosen rows drive the loop; `state::text` keeps the
        -- partial indexes on `state = 'queued'` out of the inner scan, so only the primary key
        -- can serve it. (SKIP LOCKED: a claim never waits for a job row, so the order in which
        -- it takes them does not matter for deadlocks; see "Lock order".)
        SELECT l.id FROM capped c
         CROSS JOIN LATERAL (SELECT j.id FROM sluice.jobs j
                              WHERE j.id = c.id AND j.state::text = 'queued'
                                FOR UPDATE OF j SKIP LOCKED) l
    )
    UPDATE sluice.jobs j
       SET state = 'running', attempt = j.attempt + 1, lease_owner = p_worker,
           lease_expires_at = now() + p_lease, started_at = now(), wait_reason = NULL
      FROM locked
     WHERE j.id = locked.id
    RETURNING j.*;
END
$$;

-- Renews the leases of a worker's running jobs. Returns, for each id given, whether the worker
-- still owns it (false: the job was rescued or finished elsewhere; abort the call) and whether
-- a cancel was requested.
--
-- Lock order (docs/ARCHITECTURE.md, "Lock order"): the rows are locked first, in ascending id,
-- and only then updated. An UPDATE alone locks rows in whatever order its plan visits them (an
-- index scan of the sorted array, a bitmap scan in heap order); the heartbeat then deadlocked
-- (40P01) with a completion (sluice.finish_attempts) holding some of the same jobs.
CREATE OR REPLACE FUNCTION sluice.renew_leases(p_worker text, p_ids uuid[], p_lease interval)
RETURNS TABLE (id uuid, owned boolean, cancel_requested boolean)
LANGUAGE sql SET search_path = pg_catalog, sluice SET jit = off SET enable_seqscan = off AS $$
    -- Rows are found by primary key only (docs/ARCHITECTURE.md, "Plans and statistics"):
    -- `state::text` keeps the partial index of running jobs out of it (with statistics taken
    -- while no job ran, the planner expected ~1 running row and read the whole running index
    -- once per id: 0.5-0.9 s for 1,000 ids), and the update reads the locked ids as an array.
    WITH locked AS (
        SELECT j.id FROM sluice.jobs j
         WHERE j.id = ANY (p_ids) AND j.state::text = 'running' AND j.lease_owner = p_worker
         ORDER BY j.id
           FOR NO KEY UPDATE OF j
    ), renewed AS (
        UPDATE sluice.jobs j SET lease_expires_at = now() + p_lease
         WHERE j.id = ANY (ARRAY(SELECT l.id FROM locked l)) AND j.state::text = 'running' AND j.lease_owner = p_worker
        RETURNING j.id, j.cancel_requested
    )
    SELECT i.id, r.id IS NOT NULL, coalesce(r.cancel_requested, false)
      FROM unnest(p_ids) AS i(id) LEFT JOIN renewed r ON r.id = i.id
$$;
