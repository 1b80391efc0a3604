-- Repeatable migration (see docs/ARCHITECTURE.md, "Schema evolution"). The R files are applied
-- in name order, after the versioned ones, whenever any of them changed. Edit in place; every
-- statement must be safe to run again (CREATE OR REPLACE; DROP FUNCTION IF EXISTS first when a
-- signature or return type changes). Tables, types, indexes, triggers, policies and grants
-- belong in new versioned files.
--
-- Limits, budgets and kill switches: what the worker's admission reads from PostgreSQL
-- (the buckets themselves are in Redis), holds, and deferral of claimed jobs that may not
-- start yet.

-- Statement trigger: every worker re-reads limits on the next admission after a change.
CREATE OR REPLACE FUNCTION sluice.limits_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, sluice AS $$
BEGIN
    PERFORM pg_notify('sluice_limits', '');
    RETURN NULL;
END
$$;

-- Row trigger on tenants: raising (or clearing) a hard budget, or pausing/resuming, releases a
-- budget hold at once; the next admission holds the tenant again if the budget is still spent.
-- Changing (raising or clearing) the tenant's rpm or tpm makes its jobs that wait for the
-- tenant's own bucket runnable at once, as sluice.set_model_limits does for a model's: they
-- waited for a refill computed under the old limit, and the next admission checks them against
-- the new one.
CREATE OR REPLACE FUNCTION sluice.release_budget_hold() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off SET enable_seqscan = off AS $$
BEGIN
    IF NEW.held_until IS NOT NULL AND NEW.held_until IS NOT DISTINCT FROM OLD.held_until
       AND (NEW.daily_token_budget_hard IS DISTINCT FROM OLD.daily_token_budget_hard
            OR NEW.monthly_token_budget_hard IS DISTINCT FROM OLD.monthly_token_budget_hard
            OR NEW.daily_usd_budget_hard IS DISTINCT FROM OLD.daily_usd_budget_hard
            OR NEW.monthly_usd_budget_hard IS DISTINCT FROM OLD.monthly_usd_budget_hard) THEN
        NEW.held_until := NULL;
        NEW.hold_reason := NULL;
    END IF;
    IF NEW.rpm IS DISTINCT FROM OLD.rpm OR NEW.tpm IS DISTINCT FROM OLD.tpm THEN
        -- The tenant's queued jobs with a later run_at, through jobs_claim_idx (naming every lane
        -- lets the planner read one range per lane rather than the tenant's whole backlog).
        PERFORM sluice.make_runnable(ARRAY(
            SELECT j.id FROM sluice.jobs j
             WHERE j.tenant = NEW.id AND j.lane = ANY (enum_range(NULL::sluice.lane)) AND j.state = 'queued'
               AND j.run_at > now() AND j.wait_reason LIKE 'rate limit: tenant %'));
    END IF;
    RETURN NEW;
END
$$;

-- What admission needs to know, in one round trip: every model limit (and kill switch), and
-- every tenant that has a rate limit or a budget, with its spend today and this month (UTC).
-- The worker caches it until the next NOTIFY sluice_limits (or a few seconds).
DROP FUNCTION IF EXISTS sluice.limits_snapshot();
CREATE OR REPLACE FUNCTION sluice.limits_snapshot()
RETURNS TABLE (kind text, provider text, model text, key_id text, tenant text, rpm bigint, tpm bigint, input_tpm bigint,
               output_tpm bigint, paused boolean, daily_tokens bigint, monthly_tokens bigint,
               daily_usd numeric, monthly_usd numeric, daily_tokens_soft bigint, monthly_tokens_soft bigint,
               daily_usd_soft numeric, monthly_usd_soft numeric, soft_fraction numeric,
               spent_day_tokens bigint, spent_month_tokens bigint, spent_day_usd numeric, spent_month_usd numeric,
               soft_lane text, soft_route text)
LANGUAGE sql STABLE SET search_path = pg_catalog, sluice AS $$
    SELECT 'model', m.provider, m.model, m.key_id, NULL, m.rpm, m.tpm, m.input_tpm, m.output_tpm, m.paused,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM sluice.model_limits m
    UNION ALL
    SELECT 'tenant', NULL, NULL, NULL, t.id, t.rpm, t.tpm, NULL, NULL, t.paused,
           t.daily_token_budget_hard, t.monthly_token_budget_hard, t.daily_usd_budget_hard, t.monthly_usd_budget_hard,
           t.daily_token_budget_soft, t.monthly_token_budget_soft, t.daily_usd_budget_soft, t.monthly_usd_budget_soft,
           t.soft_fraction, d.tokens, mo.tokens, d.cost, mo.cost, t.soft_lane, t.soft_route
      FROM sluice.tenants t
     CROSS JOIN LATERAL (SELECT coalesce(sum(u.tokens), 0)::bigint AS tokens, coalesce(sum(u.cost_usd), 0) AS cost
                           FROM sluice.usage_daily u
                          WHERE u.tenant = t.id AND u.day = (now() AT TIME ZONE 'UTC')::date) d
     CROSS JOIN LATERAL (SELECT coalesce(sum(u.tokens), 0)::bigint AS tokens, coalesce(sum(u.cost_usd), 0) AS cost
                           FROM sluice.usage_daily u
                          WHERE u.tenant = t.id AND u.day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date) mo
     WHERE t.rpm IS NOT NULL OR t.tpm IS NOT NULL
        OR t.daily_token_budget_hard IS NOT NULL OR t.monthly_token_budget_hard IS NOT NULL
        OR t.daily_usd_budget_hard IS NOT NULL OR t.monthly_usd_budget_hard IS NOT NULL
        OR t.daily_token_budget_soft IS NOT NULL OR t.monthly_token_budget_soft IS NOT NULL
        OR t.daily_usd_budget_soft IS NOT NULL OR t.monthly_usd_budget_soft IS NOT NULL
$$;

-- Puts claimed jobs back in the queue without starting them and without consuming an attempt
-- (a rate-limit bucket said "not yet", a cooldown, a paused model, a held tenant): each job
-- runs again at its run_at, and wait_reason says why it waits. Only jobs the worker still owns
-- at that attempt move. Rows are locked in id order (the order every statement that locks job
-- rows uses). p_lanes / p_routes (NULL entries: unchanged) demote a job whose tenant reached a
-- soft budget: a lower lane, or a cheaper route (the job then names that route, from its start).
DROP FUNCTION IF EXISTS sluice.defer(text, uuid[], integer[], timestamptz[], text[]);
CREATE OR REPLACE FUNCTION sluice.defer(p_worker text, p_ids uuid[], p_attempts integer[], p_run_at timestamptz[],
                                        p_reasons text[], p_lanes text[] DEFAULT NULL, p_routes text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off AS $$
DECLARE
    n integer;
    v_soonest timestamptz;
BEGIN
    WITH items AS (
        SELECT i.id, i.attempt, i.run_at, i.reason, i.lane, i.route
          FROM unnest(p_ids, p_attempts, p_run_at, p_reasons, coalesce(p_lanes, '{}'), coalesce(p_routes, '{}'))
               AS i(id, attempt, run_at, reason, lane, route)
    ), locked AS (
        SELECT j.id FROM sluice.jobs j JOIN items i ON i.id = j.id
         WHERE j.attempt = i.attempt AND j.state = 'running' AND j.lease_owner = p_worker
         ORDER BY j.id
           FOR NO KEY UPDATE OF j
    ), upd AS (
        UPDATE sluice.jobs j
           -- A job put back because its model was paused runs at once if the model is not
           -- paused now: a resume that committed between the worker's verdict and this write
           -- woke the model's waiting jobs without this one (it was still running), and it
           -- would otherwise wait a whole pausedRetry. (Route jobs name a route, not the model.)
           -- Likewise a job put back for a rate limit runs at once if its model's limits or its
           -- tenant's changed since this attempt was claimed: a raised limit woke the waiting
           -- jobs without this one, and its wait was computed under the old limit. (The next
           -- admission checks it against the new one; changes are stamped with the clock at
           -- the change, so one that commits after the claim began is seen here. Any change of
           -- the tenant's row counts, updated_at being all that records one: at worst a job is
           -- admitted once more.)
           SET state = 'queued', attempt = j.attempt - 1,
               run_at = CASE WHEN i.reason LIKE 'model % is paused (kill switch)' AND j.provider <> 'route'
                                  AND NOT EXISTS (SELECT 1 FROM sluice.model_limits m
                                                   WHERE m.provider = j.provider AND m.model = j.model
                                                     AND m.key_id = '' AND m.paused)
                             THEN now()
                             WHEN i.reason LIKE 'rate limit:%'
                                  AND (EXISTS (SELECT 1 FROM sluice.model_limits m
                                                WHERE m.provider = j.provider AND m.model = j.model
                                                  AND m.updated_at >= j.started_at)
                                       OR EXISTS (SELECT 1 FROM sluice.tenants t
                                                   WHERE t.id = j.tenant AND t.updated_at >= j.started_at))
                             THEN now()
                             ELSE greatest(i.run_at, now()) END,
               lease_owner = NULL,
               lease_expires_at = NULL, started_at = NULL, wait_reason = left(i.reason, 500),
               lane = coalesce(i.lane::sluice.lane, j.lane),
               provider = CASE WHEN i.route IS NULL THEN j.provider ELSE 'route' END,
               model = coalesce(i.route, j.model),
               route_step = CASE WHEN i.route IS NULL THEN j.route_step END,
               route_context_floor = CASE WHEN i.route IS NULL THEN j.route_context_floor END
          FROM items i, locked l
         WHERE j.id = i.id AND l.id = j.id
        RETURNING j.run_at
    )
    SELECT count(*), min(u.run_at) INTO n, v_soonest FROM upd u;
    IF n > 0 AND v_soonest <= now() THEN
        PERFORM pg_notify('sluice_jobs', 'any');
    END IF;
    RETURN n;
END
$$;

-- Holds a tenant whose hard budget is spent until p_until (the budget window's end): the claim
-- skips it, its queued jobs stay queued with the reason visible. A later hold never shortens
-- an earlier one.
CREATE OR REPLACE FUNCTION sluice.hold_tenant(p_tenant text, p_until timestamptz, p_reason text)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, sluice AS $$
    UPDATE sluice.tenants
       SET held_until = greatest(p_until, held_until), hold_reason = left(p_reason, 500)
     WHERE id = p_tenant AND (held_until IS NULL OR held_until < p_until OR hold_reason IS DISTINCT FROM left(p_reason, 500))
$$;

-- Sets a model's limits (NULL leaves a limit unchanged; 0 clears it) and returns the row; with
-- p_key_id, the limits of that API key of the model (a key pool; the kill switch is the model's
-- own, key '' ). Jobs of the model that were put back to wait (for a bucket under the old
-- limits, or while it was paused) become runnable at once unless the model is paused now.
DROP FUNCTION IF EXISTS sluice.set_model_limits(text, text, bigint, bigint, bigint, bigint, boolean);
DROP FUNCTION IF EXISTS sluice.set_model_limits(text, text, bigint, bigint, bigint, bigint, boolean, text);
CREATE OR REPLACE FUNCTION sluice.set_model_limits(p_provider text, p_model text, p_rpm bigint, p_tpm bigint,
                                                   p_input_tpm bigint, p_output_tpm bigint, p_paused boolean,
                                                   p_key_id text DEFAULT '')
RETURNS SETOF sluice.model_limits
LANGUAGE plpgsql SET search_path = pg_catalog, sluice AS $$
DECLARE
    v_row sluice.model_limits;
BEGIN
    -- updated_at is the clock at the change, not the transaction's start: sluice.defer compares
    -- it with the start of a claim that may have begun while this transaction ran.
    INSERT INTO sluice.model_limits AS m (provider, model, key_id, rpm, tpm, input_tpm, output_tpm, paused, updated_at)
    VALUES (p_provider, p_model, coalesce(p_key_id, ''), nullif(p_rpm, 0), nullif(p_tpm, 0), nullif(p_input_tpm, 0),
            nullif(p_output_tpm, 0), coalesce(p_paused, false), clock_timestamp())
    ON CONFLICT (provider, model, key_id) DO UPDATE
       SET rpm = CASE WHEN p_rpm IS NULL THEN m.rpm ELSE nullif(p_rpm, 0) END,
           tpm = CASE WHEN p_tpm IS NULL THEN m.tpm ELSE nullif(p_tpm, 0) END,
           input_tpm = CASE WHEN p_input_tpm IS NULL THEN m.input_tpm ELSE nullif(p_input_tpm, 0) END,
           output_tpm = CASE WHEN p_output_tpm IS NULL THEN m.output_tpm ELSE nullif(p_output_tpm, 0) END,
           paused = coalesce(p_paused, m.paused),
           updated_at = clock_timestamp(), updated_by = current_user
    RETURNING m.* INTO v_row;
    IF NOT v_row.paused THEN
        PERFORM sluice.wake_deferred(p_provider, p_model);
    END IF;
    RETURN NEXT v_row;
END
$$;

-- Resuming a model makes its waiting jobs runnable at once (they were deferred while it was
-- paused). Returns how many jobs were woken.
CREATE OR REPLACE FUNCTION sluice.wake_deferred(p_provider text, p_model text)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, sluice AS $$
BEGIN
    RETURN sluice.make_runnable(ARRAY(
        SELECT j.id FROM sluice.jobs j
         WHERE j.state = 'queued' AND j.provider = p_provider AND j.model = p_model AND j.wait_reason IS NOT NULL
           AND j.run_at > now()));
END
$$;

-- Makes the given jobs runnable now if they are still queued for later, and wakes the workers.
-- Rows in ascending id (docs/ARCHITECTURE.md, "Lock order"), found by primary key only;
-- SKIP LOCKED: a job being claimed or changed right now is left as it is (a claimed one is
-- about to be admitted anyway). Returns how many jobs moved.
CREATE OR REPLACE FUNCTION sluice.make_runnable(p_ids uuid[])
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off SET enable_seqscan = off AS $$
DECLARE
    n integer;
BEGIN
    WITH locked AS (
        SELECT j.id FROM sluice.jobs j
         WHERE j.id = ANY (p_ids) AND j.state::text = 'queued' AND j.run_at > now()
         ORDER BY j.id
           FOR UPDATE OF j SKIP LOCKED
    ), upd AS (
        UPDATE sluice.jobs j SET run_at = now() FROM locked l WHERE j.id = l.id RETURNING j.id
    )
    SELECT count(*) INTO n FROM upd;
    IF n > 0 THEN
        PERFORM pg_notify('sluice_jobs', 'any');
    END IF;
    RETURN n;
END
$$;
