-- Repeatable migration (see docs/ARCHITECTURE.md, "Schema evolution"). The R files are applied
-- in name order, after the versioned ones, whenever any of them changed. Edit in place; every
-- statement must be safe to run again (CREATE OR REPLACE; DROP FUNCTION IF EXISTS first when a
-- signature or return type changes). Tables, types, indexes, triggers, policies and grants
-- belong in new versioned files.
--
-- Claiming and lease renewal.

-- Fair queueing (docs/ARCHITECTURE.md, "Fairness"): start-time fair queueing over tenants,
-- per lane. Each tenant with queued jobs in a lane has a row in sluice.fair_queue holding its
-- virtual clock there (vclock); each lane has a virtual time (sluice.fair_lanes.vtime), the
-- largest virtual start the claim has given one of its jobs. A tenant's k-th job of a claim
-- (k = 0, 1, …) starts at virtual time
--     greatest(vclock, vtime) + k / weight
-- and the claim takes the jobs with the lowest virtual starts, then moves the tenant's clock
-- past the jobs it took (1 / weight each). So backlogged tenants are started in proportion to
-- their weights; a tenant that was idle, held or throttled starts at the lane's virtual time
-- (it cannot bank a share it did not use), which puts its first job ahead of every backlog
-- that was running meanwhile. Virtual starts are taken when the claim looks at a tenant, not
-- stamped on each job when it is queued: a stamp on the job would go stale while its tenant
-- is held back (at max_concurrency, rate-limited, over budget), and every claim would then
-- have to step over that tenant's whole backlog in the order index. Within a tenant and lane,
-- jobs run in (run_at, id) order, as before.

-- Registers queued jobs' tenants and lanes in the fair queue (called by the jobs statement
-- trigger, sluice.track_queue_depth, once per statement, with the groups sorted by tenant and
-- lane and each group's earliest run_at). A new row starts at the lane's virtual time. Each row
-- is held FOR KEY SHARE until this transaction ends: a claim deletes (no queued job left) or
-- parks (nothing runnable yet) a row only after locking it FOR UPDATE SKIP LOCKED and looking
-- again, so it never removes the row of a job that is being added. KEY SHARE does not conflict
-- with the claim's clock updates, and concurrent arrivals of one tenant share it: enqueues of a
-- tenant do not queue behind each other on a clock row. A parked row whose park ends after the
-- new jobs are due is unparked.
CREATE OR REPLACE FUNCTION sluice.fair_arrivals(p_tenants text[], p_lanes sluice.lane[], p_due timestamptz[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sluice AS $$
DECLARE
    i integer;
    v_parked timestamptz;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_tenants, 1), 0) LOOP
        LOOP
            SELECT q.parked_until INTO v_parked FROM sluice.fair_queue q
             WHERE q.tenant = p_tenants[i] AND q.lane = p_lanes[i]
               FOR KEY SHARE;
            IF FOUND THEN
                -- (Not a row the claim already finds due: clock_timestamp, as now() is this
                -- transaction's start.)
                IF v_parked > greatest(p_due[i], clock_timestamp()) THEN
                    UPDATE sluice.fair_queue q
                       SET parked_until = CASE WHEN p_due[i] <= clock_timestamp() THEN NULL ELSE p_due[i] END
                     WHERE q.tenant = p_tenants[i] AND q.lane = p_lanes[i] AND q.parked_until > p_due[i];
                END IF;
                EXIT;
            END IF;
            INSERT INTO sluice.fair_queue (tenant, lane, vclock)
            VALUES (p_tenants[i], p_lanes[i], coalesce((SELECT f.vtime FROM sluice.fair_lanes f WHERE f.lane = p_lanes[i]), 0))
            ON CONFLICT (tenant, lane) DO NOTHING;
            -- Inserted: nobody else sees the row before this transaction commits. Otherwise a
            -- row exists (or was inserted and committed meanwhile): lock it on the next turn.
            EXIT WHEN FOUND;
        END LOOP;
    END LOOP;
END
$$;

-- The safety net: registers every tenant and lane that has queued jobs but no fair-queue row
-- (none should exist: every statement that queues jobs registers them through the jobs
-- trigger; a row could only go missing through a bug or a job written with triggers disabled).
-- A skip scan of jobs_claim_idx, one probe per tenant and lane with queued jobs. Workers call
-- it with their pruning round. Returns how many rows it added.
CREATE OR REPLACE FUNCTION sluice.fair_repair() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off SET enable_seqscan = off SET enable_bitmapscan = off AS $$
DECLARE
    v_tenants text[];
    v_lanes sluice.lane[];
    v_due timestamptz[];
BEGIN
    WITH RECURSIVE groups AS (
        (SELECT j.tenant, j.lane FROM sluice.jobs j WHERE j.state = 'queued' ORDER BY j.tenant, j.lane LIMIT 1)
        UNION ALL
        SELECT n.tenant, n.lane FROM groups g
         CROSS JOIN LATERAL (SELECT j.tenant, j.lane FROM sluice.jobs j
                              WHERE j.state = 'queued' AND (j.tenant, j.lane) > (g.tenant, g.lane)
                              ORDER BY j.tenant, j.lane LIMIT 1) n
    )
    SELECT array_agg(g.tenant ORDER BY g.tenant, g.lane), array_agg(g.lane ORDER BY g.tenant, g.lane),
           array_agg((SELECT j.run_at FROM sluice.jobs j WHERE j.tenant = g.tenant AND j.lane = g.lane AND j.state = 'queued'
                       ORDER BY j.run_at, j.id LIMIT 1) ORDER BY g.tenant, g.lane)
      INTO v_tenants, v_lanes, v_due
      FROM groups g
     WHERE NOT EXISTS (SELECT 1 FROM sluice.fair_queue q WHERE q.tenant = g.tenant AND q.lane = g.lane);
    IF v_tenants IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM sluice.fair_arrivals(v_tenants, v_lanes, v_due);
    RETURN array_length(v_tenants, 1);
END
$$;

-- Pausing, resuming, holding or releasing a tenant unparks its rows (trigger tenants_fair_changed,
-- 0008); the next claim parks them again if the tenant still may not run.
CREATE OR REPLACE FUNCTION sluice.fair_tenant_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sluice AS $$
BEGIN
    UPDATE sluice.fair_queue q SET parked_until = NULL
     WHERE q.tenant = NEW.id AND q.parked_until IS NOT NULL;
    RETURN NULL;
END
$$;

-- Claims up to p_limit runnable jobs for worker p_worker and marks them running with a lease.
--
-- Order: lanes strictly by priority (interactive, high, normal, batch), except that a lower
-- lane whose oldest runnable job has waited longer than p_starvation gets up to
-- ceil(p_limit / 10) of the slots first (the anti-starvation rule: a lower lane is never
-- starved for longer than p_starvation plus one claim round). Within a lane, jobs by virtual
-- start (fair queueing, above): tenants in proportion to their weights, a tenant that had
-- nothing queued ahead of the backlogs, ties by age. No tenant gets more than max_concurrency
-- minus its running jobs.
--
-- A claim reads, per lane, the first p_window (default 256) tenants of the fair queue in
-- virtual-clock order, at most p_limit + 8 of them, skipping tenants at their concurrency limit
-- and those in p_skip_tenants (tenants whose rate-limit bucket the calling worker knows to be
-- empty until it refills); per tenant it takes jobs up to the virtual time by which p_limit jobs
-- are surely available, so a claim reads about p_limit jobs whatever the backlogs and the number
-- of tenants. A claim may come back short when the first tenants are near their concurrency
-- limit; the worker then claims again at once.
--
-- Tenants that may not run now (paused; held for a spent hard budget, tenants.held_until in the
-- future; nothing due before a later run_at) are parked: their fair-queue row leaves the order
-- index until then, so their jobs stay queued without being claimed or stepped over. A row with
-- no queued job left is deleted. Both happen after the jobs are claimed, on rows taken FOR
-- UPDATE SKIP LOCKED (see sluice.fair_arrivals), so the claim never waits for a fair-queue row.
--
-- Claims are serialised by a transaction-level advisory lock so the per-tenant concurrency
-- count cannot be raced by two workers. FOR UPDATE SKIP LOCKED skips job rows a canceller or
-- rescuer holds at that moment.
--
-- p_reserved of the p_limit slots are privileged: they may only take interactive jobs and jobs
-- of light tenants (a tenant whose running jobs, counting the ones of this claim, stay within
-- p_reserved). So a worker whose slots are full of one tenant's backlog still starts an
-- interactive job, or a quiet tenant's job, as soon as it arrives.
--
-- jit = off on these functions: with a large backlog the planner's row estimates for the
-- LIMITed lateral scans are in the tens of thousands, which crosses jit_above_cost; compiling
-- the plan then cost ~50 ms per claim for a statement that runs in ~10 ms.
--
-- p_skip_models ('provider/model' names): jobs of these models are left out (the calling worker
-- knows them to be cooling down, behind an open breaker or with an empty bucket until their
-- refill time), so it does not claim jobs only to put them back. Per tenant the scan then reads
-- at most 4 × its quota + 16 queued jobs, so a backlog of a skipped model is never read whole.
DROP FUNCTION IF EXISTS sluice.claim(text, integer, sluice.lane[], text[], interval, interval, integer, integer);
DROP FUNCTION IF EXISTS sluice.claim(text, integer, sluice.lane[], text[], interval, interval, integer, integer, text[]);
CREATE OR REPLACE FUNCTION sluice.claim(p_worker text, p_limit integer, p_lanes sluice.lane[], p_tenants text[],
                             p_lease interval, p_starvation interval DEFAULT interval '10 seconds',
                             p_reserved integer DEFAULT 0, p_window integer DEFAULT 256,
                             p_skip_tenants text[] DEFAULT NULL, p_skip_models text[] DEFAULT NULL)
RETURNS SETOF sluice.jobs
-- force_generic_plan: with the walk's arrays as parameters the plan cache judged custom plans
-- cheaper and planned the claim statement again on every call (+0.6 ms a claim).
-- enable_seqscan = off, enable_bitmapscan = off: the generic plan is made once per session,
-- possibly while the tables are empty, and every read here is an ordered index probe with a
-- LIMIT or a primary-key lookup. Made on an empty table, a probe became a bitmap scan of a whole
-- index plus a sort for its LIMIT 1 (305 ms with 133k queued jobs); no step of a claim may become
-- a scan of a whole table or index (docs/ARCHITECTURE.md, "Plans and statistics").
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
DECLARE
    v_walk integer := least(greatest(p_window, 1), greatest(p_limit, 1) + 8);
    w_tenant text[];
    w_lane sluice.lane[];
    w_vstart double precision[];
    w_weight double precision[];
    w_free integer[];
    w_running integer[];
    w_ok boolean[];
    w_fix boolean[];
    w_head_at timestamptz[];
    w_head_id uuid[];
    w_fresh boolean[];
    m_tenant text[];
    m_lane sluice.lane[];
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
    -- The jobs trigger writes this claim's counter deltas to the claims' own shard row (see
    -- sluice.track_queue_depth), so the claim never waits for a counter row another statement
    -- holds.
    PERFORM set_config('sluice.claiming', 'on', true);

    -- The walk: per lane, the tenants with the lowest virtual clocks that have a free slot and
    -- are not skipped: runnable rows through fair_queue_order_idx, plus parked rows whose time
    -- has come (fair_queue_parked_idx). With p_tenants, those tenants' rows by primary key.
    -- Each with its running jobs (the sum of its counter rows in tenant_queue_depth, kept by the
    -- jobs' statement triggers: at most 16 rows, however many jobs run; counting them in
    -- jobs_running_idx made every claim O(running jobs)), its first queued job's run_at
    -- (jobs_claim_idx) and whether it may run now (ok) or its row needs attention after the
    -- claim (fix: parked, or not ok).
    SELECT array_agg(w.tenant ORDER BY w.lane, w.vclock, w.tenant), array_agg(w.lane ORDER BY w.lane, w.vclock, w.tenant),
           array_agg(greatest(w.vclock, w.vtime) ORDER BY w.lane, w.vclock, w.tenant),
           array_agg(w.weight ORDER BY w.lane, w.vclock, w.tenant),
           array_agg(w.max_concurrency - w.running ORDER BY w.lane, w.vclock, w.tenant),
           array_agg(w.running ORDER BY w.lane, w.vclock, w.tenant),
           array_agg(w.ok ORDER BY w.lane, w.vclock, w.tenant),
           array_agg(w.parked OR NOT w.ok ORDER BY w.lane, w.vclock, w.tenant),
           array_agg(w.head_at ORDER BY w.lane, w.vclock, w.tenant), array_agg(w.head_id ORDER BY w.lane, w.vclock, w.tenant),
           array_agg(w.fresh ORDER BY w.lane, w.vclock, w.tenant)
      INTO w_tenant, w_lane, w_vstart, w_weight, w_free, w_running, w_ok, w_fix, w_head_at, w_head_id, w_fresh
      FROM (
        SELECT c.tenant, c.lane, c.vclock, c.parked, f.vtime, c.weight, c.max_concurrency, c.running,
               h.run_at AS head_at, h.id AS head_id, c.fresh,
               coalesce(c.known AND NOT c.paused AND NOT coalesce(c.held_until > now(), false) AND h.run_at <= now(), false) AS ok
          FROM unnest(p_lanes) AS l(lane)
          JOIN sluice.fair_lanes f ON f.lane = l.lane
          CROSS JOIN LATERAL (
              SELECT x.*, coalesce(x.head_seen > now() - interval '1 second' AND x.head_at IS NOT NULL
                                   AND x.head_id IS NOT NULL, false) AS fresh
                FROM (
                  (SELECT q.tenant, q.lane, q.vclock, false AS parked, t.id IS NOT NULL AS known,
                          coalesce(t.weight, 1) AS weight, coalesce(t.max_concurrency, 1) AS max_concurrency,
                          coalesce(t.paused, false) AS paused, t.held_until, rc.running, q.head_at, q.head_id, q.head_seen
                     FROM sluice.fair_queue q
                     LEFT JOIN sluice.tenants t ON t.id = q.tenant
                    CROSS JOIN LATERAL (SELECT coalesce(sum(d.running), 0)::integer AS running
                                          FROM sluice.tenant_queue_depth d WHERE d.tenant = q.tenant) rc
                    WHERE p_tenants IS NULL AND q.lane = l.lane AND q.parked_until IS NULL
                      AND (p_skip_tenants IS NULL OR NOT q.tenant = ANY (p_skip_tenants))
                      AND rc.running < coalesce(t.max_concurrency, 1)
                    ORDER BY q.vclock, q.tenant
                    LIMIT v_walk)
                  UNION ALL
                  (SELECT q.tenant, q.lane, q.vclock, true, t.id IS NOT NULL, coalesce(t.weight, 1),
                          coalesce(t.max_concurrency, 1), coalesce(t.paused, false), t.held_until, rc.running,
                          q.head_at, q.head_id, q.head_seen
                     FROM sluice.fair_queue q
                     LEFT JOIN sluice.tenants t ON t.id = q.tenant
                    CROSS JOIN LATERAL (SELECT coalesce(sum(d.running), 0)::integer AS running
                                          FROM sluice.tenant_queue_depth d WHERE d.tenant = q.tenant) rc
                    WHERE p_tenants IS NULL AND q.lane = l.lane AND q.parked_until <= now()
                      AND (p_skip_tenants IS NULL OR NOT q.tenant = ANY (p_skip_tenants))
                      AND rc.running < coalesce(t.max_concurrency, 1)
                    ORDER BY q.parked_until
                    LIMIT v_walk)
                  UNION ALL
                  (SELECT q.tenant, q.lane, q.vclock, q.parked_until IS NOT NULL, t.id IS NOT NULL, coalesce(t.weight, 1),
                          coalesce(t.max_concurrency, 1), coalesce(t.paused, false), t.held_until, rc.running,
                          q.head_at, q.head_id, q.head_seen
                     FROM unnest(p_tenants) AS pt(tenant)
                    -- (A primary-key probe per tenant: LIMIT keeps the subquery from being
                    -- flattened into a scan of the lane's rows.)
                    CROSS JOIN LATERAL (SELECT k.* FROM sluice.fair_queue k
                                         WHERE k.tenant = pt.tenant AND k.lane = l.lane LIMIT 1) q
                     LEFT JOIN sluice.tenants t ON t.id = q.tenant
                    CROSS JOIN LATERAL (SELECT coalesce(sum(d.running), 0)::integer AS running
                                          FROM sluice.tenant_queue_depth d WHERE d.tenant = q.tenant) rc
                    WHERE p_tenants IS NOT NULL AND (q.parked_until IS NULL OR q.parked_until <= now())
                      AND (p_skip_tenants IS NULL OR NOT q.tenant = ANY (p_skip_tenants))
                      AND rc.running < coalesce(t.max_concurrency, 1))
              ) x
              ORDER BY x.vclock, x.tenant
              LIMIT v_walk
          ) c
          -- The tenant's first queued job, from where the last claim found it while that is
          -- fresh (see the comment on the clocks update below), else from the start.
          LEFT JOIN LATERAL (SELECT j.run_at, j.id FROM sluice.jobs j
                              WHERE j.tenant = c.tenant AND j.lane = c.lane AND j.state = 'queued'
                                AND (j.run_at, j.id) >= (CASE WHEN c.fresh THEN c.head_at ELSE '-infinity'::timestamptz END,
                                                         CASE WHEN c.fresh THEN c.head_id ELSE '00000000-0000-0000-0000-000000000000'::uuid END)
                              ORDER BY j.run_at, j.id LIMIT 1) h ON true
      ) w;

    IF w_tenant IS NOT NULL AND true = ANY (w_ok) THEN
        RETURN QUERY
        WITH walk AS (
            SELECT w.tenant, w.lane, w.vstart, w.weight, w.free, w.running, w.head_at, w.head_id, w.fresh
              FROM unnest(w_tenant, w_lane, w_vstart, w_weight, w_free, w_running, w_ok, w_head_at, w_head_id, w_fresh)
                   AS w(tenant, lane, vstart, weight, free, running, ok, head_at, head_id, fresh)
             WHERE w.ok
        ), horizon AS (
            -- Per lane, a virtual time by which p_limit starts are surely available (ignoring
            -- concurrency limits): for the first n tenants in virtual order, the n-th one's
            -- start plus p_limit over their summed weights; the least over n.
            SELECT x.lane, min(x.vstart + p_limit / x.weights) AS upto
              FROM (SELECT w.lane, w.vstart,
                           sum(w.weight) OVER (PARTITION BY w.lane ORDER BY w.vstart, w.tenant) AS weights
                      FROM walk w) x
             GROUP BY x.lane
        ), quota AS (
            -- How many jobs of each tenant have a virtual start up to the horizon.
            SELECT w.tenant, w.lane, w.vstart, w.weight, w.head_at, w.head_id,
                   least(w.free, p_limit, greatest(0, floor((h.upto - w.vstart) * w.weight)::bigint + 1))::integer AS n
              FROM walk w JOIN horizon h ON h.lane = w.lane
        ), candidates AS (
            SELECT c.id, q.tenant, q.lane, c.run_at, q.vstart + (c.k - 1) / q.weight AS vstart,
                   q.vstart AS base, q.weight
              FROM quota q
             CROSS JOIN LATERAL (
                  SELECT j.id, j.run_at, row_number() OVER (ORDER BY j.run_at, j.id) AS k
                    FROM (SELECT s.id, s.run_at
                            FROM (SELECT j.id, j.run_at, j.provider, j.model FROM sluice.jobs j
                                   WHERE j.tenant = q.tenant AND j.lane = q.lane AND j.state = 'queued' AND j.run_at <= now()
                                     AND (j.run_at, j.id) >= (q.head_at, q.head_id)
                                   ORDER BY j.run_at, j.id
                                   LIMIT CASE WHEN p_skip_models IS NULL THEN q.n ELSE q.n * 4 + 16 END) s
                           WHERE p_skip_models IS NULL OR NOT (s.provider || '/' || s.model) = ANY (p_skip_models)
                           ORDER BY s.run_at, s.id
                           LIMIT q.n) j
             ) c
             WHERE q.n > 0
        ), lanes AS (
            SELECT c.lane, min(c.run_at) AS oldest FROM candidates c GROUP BY c.lane
        ), ranked AS (
            SELECT c.*,
                   -- Starving lower lanes first (bounded share), then strict lane priority,
                   -- then virtual start, then virtual finish (start + 1 / weight: of two jobs
                   -- with the same start, the one of the heavier tenant; ties by age alone
                   -- favoured the tenant that enqueued first, +5 % of its share in the
                   -- weighted benchmark), then age.
                   CASE WHEN ls.oldest < now() - p_starvation AND c.lane > (SELECT min(lane) FROM lanes)
                             AND row_number() OVER (PARTITION BY c.lane ORDER BY c.vstart, c.vstart + 1 / c.weight, c.run_at, c.id)
                                 <= greatest(1, ceil(p_limit / 10.0))
                        THEN 0 ELSE 1 END AS starving_first
              FROM candidates c JOIN lanes ls ON ls.lane = c.lane
        ), ordered AS (
            SELECT r.id, r.tenant, r.lane,
                   row_number() OVER (ORDER BY r.starving_first, r.lane, r.vstart, r.vstart + 1 / r.weight, r.run_at, r.id) AS pos
              FROM ranked r
        ), allowance AS (
            SELECT w.tenant, min(w.free) AS free, min(w.running) AS running FROM walk w GROUP BY w.tenant
        ), per_tenant AS (
            -- Each tenant capped at its free slots (over all lanes); a job is privileged when it
            -- is interactive or its tenant is light (running jobs, counting this claim's, within
            -- p_reserved).
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
        ), chosen AS (
            SELECT c.id, c.pos, x.tenant, x.lane, x.vstart, x.base, x.weight FROM capped c JOIN candidates x ON x.id = c.id
        ), locked AS (
            -- One primary-key probe per chosen job, whatever the statistics say. (A join let the
            -- planner drive it from the claim index when its cached plan had been made while the
            -- queue was empty: every queued row against every chosen one, 1-11 s per claim after a
            -- burst until autovacuum analysed the table.) The lateral subquery with its row lock
            -- cannot be flattened, so the chosen rows drive the loop; `state::text` keeps the
            -- partial indexes on `state = 'queued'` out of the inner scan, so only the primary key
            -- can serve it. (SKIP LOCKED: a claim never waits for a job row, so the order in which
            -- it takes them does not matter for deadlocks; see "Lock order".)
            -- The update below finds each locked row by its tuple id (a Tid Scan), not by a
            -- second primary-key probe: the row lock keeps the tuple where it is until this
            -- transaction ends (+3-10 % in the claim+complete pgbench loop, docs/bench/queue.md).
            -- A row another transaction updated after this statement's snapshot was taken (a
            -- canceller) is locked at its new version, which the snapshot does not see: it is
            -- then left out of this claim, not claimed twice or lost.
            SELECT l.ctid AS tid, c.tenant, c.lane, c.vstart, c.base, c.weight FROM chosen c
             CROSS JOIN LATERAL (SELECT j.ctid FROM sluice.jobs j
                                  WHERE j.id = c.id AND j.state::text = 'queued'
                                    FOR UPDATE OF j SKIP LOCKED) l
        ), upd AS (
            UPDATE sluice.jobs j
               SET state = 'running', attempt = j.attempt + 1, lease_owner = p_worker,
                   lease_expires_at = now() + p_lease, lease_renewed_until = NULL, started_at = now(), wait_reason = NULL
              FROM locked
             WHERE j.ctid = locked.tid
            RETURNING j AS job, locked.tenant, locked.lane, locked.vstart, locked.base, locked.weight
        ), charged AS (
            SELECT u.tenant, u.lane, min(u.base) AS base, min(u.weight) AS weight, count(*) AS n, max(u.vstart) AS last
              FROM upd u
             GROUP BY u.tenant, u.lane
        ), clocks AS (
            -- Each tenant's clock moves past the jobs it started: 1 / weight each. (NO KEY
            -- UPDATE, which an arrival's KEY SHARE does not conflict with: the claim does not
            -- wait here. An arrival only writes a row that is parked, which this claim did not
            -- take jobs from.)
            -- And the place of its first queued job in jobs_claim_idx, where the next claim's
            -- probe starts (0012): every entry before it was dead or not yet visible to this
            -- claim, and the jobs this claim took leave dead entries right after it, which
            -- vacuum removes only once a minute. A probe from the start read all of them
            -- (~1.5 ms per tenant with 760k dead tuples). A job that becomes visible behind
            -- the remembered place (its transaction began earlier and committed later, or its
            -- run_at is in the past) is found by the next probe from the start: head_seen is
            -- when a probe last read from the start, and a place older than 1 s is not used.
            UPDATE sluice.fair_queue q SET vclock = ch.base + ch.n / ch.weight,
                   head_at = w.head_at, head_id = w.head_id,
                   head_seen = CASE WHEN w.fresh THEN q.head_seen ELSE now() END
              FROM charged ch JOIN walk w ON w.tenant = ch.tenant AND w.lane = ch.lane
             WHERE q.tenant = ch.tenant AND q.lane = ch.lane
            RETURNING q.tenant
        ), times AS (
            -- The lane's virtual time: the latest virtual start given.
            UPDATE sluice.fair_lanes f SET vtime = greatest(f.vtime, x.last)
              FROM (SELECT ch.lane, max(ch.last) AS last FROM charged ch GROUP BY ch.lane) x
             WHERE f.lane = x.lane AND x.last > f.vtime
            RETURNING f.lane
        )
        SELECT (u.job).* FROM upd u;
    END IF;

    -- Rows that need attention: parked ones whose time came, and those that may not run now.
    -- Taken FOR UPDATE SKIP LOCKED (an arrival holding one is adding a job: leave it for the
    -- next claim), then looked at again in a new statement, which sees every job committed
    -- before the lock was taken: no queued job left, delete; paused, park for good (resuming
    -- unparks); held, park until the hold ends; nothing due, park until the first run_at;
    -- otherwise runnable.
    IF w_tenant IS NOT NULL AND true = ANY (w_fix) THEN
        SELECT array_agg(k.tenant ORDER BY k.tenant, k.lane), array_agg(k.lane ORDER BY k.tenant, k.lane)
          INTO m_tenant, m_lane
          FROM (SELECT q.tenant, q.lane FROM sluice.fair_queue q
                 WHERE (q.tenant, q.lane) IN (SELECT u.tenant, u.lane FROM unnest(w_tenant, w_lane, w_fix) AS u(tenant, lane, fix)
                                               WHERE u.fix)
                 ORDER BY q.tenant, q.lane
                   FOR UPDATE OF q SKIP LOCKED) k;
        IF m_tenant IS NOT NULL THEN
            WITH state AS (
                SELECT m.tenant, m.lane, t.id IS NOT NULL AS known, coalesce(t.paused, false) AS paused, t.held_until,
                       (SELECT j.run_at FROM sluice.jobs j
                         WHERE j.tenant = m.tenant AND j.lane = m.lane AND j.state = 'queued'
                         ORDER BY j.run_at, j.id LIMIT 1) AS head
                  FROM unnest(m_tenant, m_lane) AS m(tenant, lane)
                  LEFT JOIN sluice.tenants t ON t.id = m.tenant
            ), gone AS (
                DELETE FROM sluice.fair_queue q USING state s
                 WHERE q.tenant = s.tenant AND q.lane = s.lane AND s.head IS NULL
            )
            UPDATE sluice.fair_queue q
               -- (The next probe reads from the start: a row that needed attention may have
               -- had jobs behind its remembered place.)
               SET head_seen = NULL,
                   parked_until = CASE WHEN s.paused OR NOT s.known THEN 'infinity'::timestamptz
                                       WHEN s.held_until > now() THEN greatest(s.held_until, s.head)
                                       WHEN s.head > now() THEN s.head END
              FROM state s
             WHERE q.tenant = s.tenant AND q.lane = s.lane AND s.head IS NOT NULL;
        END IF;
    END IF;
END
$$;

-- Renews the leases of a worker's running jobs. Returns, for each id given, whether the worker
-- still owns it (false: the job was rescued or finished elsewhere; abort the call) and whether
-- a cancel was requested.
--
-- A heartbeat never waits for a job row (SKIP LOCKED). A row another transaction holds at this
-- moment is most often one of this worker's own completions being written (the heartbeat also
-- renews finished jobs whose outcomes are still buffered); otherwise a canceller, or a rescuer
-- taking a lease that already expired. Such a row is not renewed this time and is reported as
-- owned if this statement's snapshot shows it running under this worker: the next heartbeat
-- tells. Before, the heartbeat waited for such rows while holding the locks of all the others
-- it had renewed, so the worker's completions queued behind it (a convoy, seen by sampling
-- pg_stat_activity and pg_locks in the e2e benchmark), and an idle-in-transaction canceller
-- could stop a worker's completions for as long as it stayed open.
-- Rows are still locked in ascending id (docs/ARCHITECTURE.md, "Lock order").
--
-- Committed asynchronously: a renewal lost in a server crash only leaves the lease it extended
-- (the rescue sweep may then take the job sooner; the finish guard keeps one result per job).
CREATE OR REPLACE FUNCTION sluice.renew_leases(p_worker text, p_ids uuid[], p_lease interval)
RETURNS TABLE (id uuid, owned boolean, cancel_requested boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off SET enable_seqscan = off AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    -- Rows are found by primary key only (docs/ARCHITECTURE.md, "Plans and statistics"):
    -- `state::text` keeps the partial index of running jobs out of it (with statistics taken
    -- while no job ran, the planner expected ~1 running row and read the whole running index
    -- once per id: 0.5-0.9 s for 1,000 ids), and the update reads the locked ids as an array.
    RETURN QUERY
    WITH mine AS (
        SELECT j.id FROM sluice.jobs j
         WHERE j.id = ANY (p_ids) AND j.state::text = 'running' AND j.lease_owner = p_worker
    ), locked AS (
        SELECT j.id FROM sluice.jobs j
         WHERE j.id = ANY (p_ids) AND j.state::text = 'running' AND j.lease_owner = p_worker
         ORDER BY j.id
           FOR NO KEY UPDATE OF j SKIP LOCKED
    ), renewed AS (
        -- Only lease_renewed_until, which no index holds (0014): a HOT update once the page
        -- has room. The lease ends at the later of it and the claim's lease_expires_at.
        UPDATE sluice.jobs j SET lease_renewed_until = now() + p_lease
         WHERE j.id = ANY (ARRAY(SELECT l.id FROM locked l)) AND j.state::text = 'running' AND j.lease_owner = p_worker
        RETURNING j.id, j.cancel_requested
    )
    SELECT i.id, r.id IS NOT NULL OR (m.id IS NOT NULL AND l.id IS NULL), coalesce(r.cancel_requested, false)
      FROM unnest(p_ids) AS i(id)
      LEFT JOIN renewed r ON r.id = i.id
      LEFT JOIN mine m ON m.id = i.id
      LEFT JOIN locked l ON l.id = i.id;
END
$$;
