-- Repeatable migration (see docs/ARCHITECTURE.md, "Schema evolution"). The R files are applied
-- in name order, after the versioned ones, whenever any of them changed. Edit in place; every
-- statement must be safe to run again (CREATE OR REPLACE; DROP FUNCTION IF EXISTS first when a
-- signature or return type changes). Tables, types, indexes, triggers, policies and grants
-- belong in new versioned files.
--
-- Functions behind the job store's triggers and ids (tables: 0001_job_store.sql).

-- Time-ordered UUIDs (version 7: 48-bit Unix milliseconds, then random bits), so ids sort by
-- creation and keyset pagination over (tenant, id) is creation order. PostgreSQL 15 has no
-- built-in uuidv7().
CREATE OR REPLACE FUNCTION sluice.uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    placing substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

-- Statement triggers of jobs (0001): the per-tenant counters of queued and running jobs (16
-- shard rows per tenant, one per statement: see s below; `running` since 0011, read by the
-- claim for concurrency limits), and the arrivals of tenants in the fair queue
-- (sluice.fair_arrivals, R60_claim.sql): every statement that makes jobs queued (enqueue,
-- retry, rescue, release, defer, a changed run_at) registers their tenants and lanes there, once
-- per tenant and lane per statement, whichever function wrote the rows.
CREATE OR REPLACE FUNCTION sluice.track_queue_depth() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sluice AS $$
DECLARE
    -- The counter row: shard 0 for a claim (sluice.claim sets sluice.claiming for its
    -- transaction), one of shards 1-15 at random for every other statement. Claims are
    -- serialised by the claim lock, so shard 0 is never held by anyone a claim could wait for:
    -- a claim never waits for a counter row (docs/ARCHITECTURE.md, "Lock order"). With one
    -- random shard of 16 for everything, a claim waited for a completion's counter row and
    -- deadlocked with it (40P01 in LockOrderTests and in a CI run).
    s smallint := CASE WHEN current_setting('sluice.claiming', true) = 'on' THEN 0
                       ELSE 1 + floor(random() * 15)::smallint END;
    v_tenants text[];
    v_lanes sluice.lane[];
    v_due timestamptz[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sluice.tenant_queue_depth AS d (tenant, shard, queued, running)
        SELECT n.tenant, s, count(*) FILTER (WHERE n.state = 'queued'), count(*) FILTER (WHERE n.state = 'running')
          FROM new_rows n WHERE n.state IN ('queued', 'running') GROUP BY n.tenant ORDER BY n.tenant
        ON CONFLICT (tenant, shard) DO UPDATE SET queued = d.queued + excluded.queued, running = d.running + excluded.running;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO sluice.tenant_queue_depth AS d (tenant, shard, queued, running)
        SELECT x.tenant, s, sum(x.queued), sum(x.running) FROM (
            SELECT n.tenant, (n.state = 'queued')::integer AS queued, (n.state = 'running')::integer AS running
              FROM new_rows n WHERE n.state IN ('queued', 'running')
            UNION ALL
            SELECT o.tenant, -(o.state = 'queued')::integer, -(o.state = 'running')::integer
              FROM old_rows o WHERE o.state IN ('queued', 'running')) x
         GROUP BY x.tenant HAVING sum(x.queued) <> 0 OR sum(x.running) <> 0 ORDER BY x.tenant
        ON CONFLICT (tenant, shard) DO UPDATE SET queued = d.queued + excluded.queued, running = d.running + excluded.running;
    ELSE
        INSERT INTO sluice.tenant_queue_depth AS d (tenant, shard, queued, running)
        SELECT o.tenant, s, -count(*) FILTER (WHERE o.state = 'queued'), -count(*) FILTER (WHERE o.state = 'running')
          FROM old_rows o WHERE o.state IN ('queued', 'running') GROUP BY o.tenant ORDER BY o.tenant
        ON CONFLICT (tenant, shard) DO UPDATE SET queued = d.queued + excluded.queued, running = d.running + excluded.running;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        -- (Claims and completions write no queued row: one pass over the statement's rows.)
        SELECT array_agg(g.tenant ORDER BY g.tenant, g.lane), array_agg(g.lane ORDER BY g.tenant, g.lane),
               array_agg(g.due ORDER BY g.tenant, g.lane)
          INTO v_tenants, v_lanes, v_due
          FROM (SELECT n.tenant, n.lane, min(n.run_at) AS due FROM new_rows n WHERE n.state = 'queued'
                 GROUP BY n.tenant, n.lane) g;
        IF v_tenants IS NOT NULL THEN
            PERFORM sluice.fair_arrivals(v_tenants, v_lanes, v_due);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- Jobs refer to their tenant without a foreign key (see jobs.tenant); deleting a tenant that
-- still has jobs is refused here instead, once per deleted tenant rather than once per job.
CREATE OR REPLACE FUNCTION sluice.tenants_keep_jobs() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, sluice AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.tenant = OLD.id) THEN
        RAISE EXCEPTION 'tenant % still has jobs; prune or delete them first', OLD.id
            USING ERRCODE = 'foreign_key_violation', COLUMN = 'tenant', CONSTRAINT = 'tenant_has_jobs';
    END IF;
    RETURN OLD;
END
$$;
