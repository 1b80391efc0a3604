-- Running-job counters per tenant (docs/ARCHITECTURE.md, "Fairness" and "Queue depth").
--
-- The claim checks each tenant's concurrency limit against its running jobs. It counted them in
-- jobs_running_idx on every claim, inside the claim lock: O(running jobs of the tenant) per
-- claim, serial across all workers (1,000 running: ~0.7 ms of a ~6 ms claim of 128 jobs; 8,000
-- running: +3 ms). The statement triggers that keep the queued counters now keep a running
-- counter beside them, in the same 16 shard rows per tenant, so the claim reads at most 16 rows
-- per tenant whatever the number of running jobs.
ALTER TABLE sluice.tenant_queue_depth ADD COLUMN running bigint NOT NULL DEFAULT 0;

-- The trigger function that keeps both counters. R10_store.sql holds the current definition
-- (it replaces this one when the repeatable migrations run, right after); it is installed here
-- too so the counters are kept from the moment they are filled below, in the same transaction,
-- whatever runs between this migration and the repeatable ones.
CREATE OR REPLACE FUNCTION sluice.track_queue_depth() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sluice AS $$
DECLARE
    s smallint := floor(random() * 16)::smallint;
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

-- Fill the counters from the jobs that are running now. Writers of sluice.jobs (workers of
-- the previous release claiming and finishing during an upgrade) wait for this transaction;
-- readers do not. Each tenant's running jobs go to its shard 0.
LOCK TABLE sluice.jobs IN SHARE MODE;
INSERT INTO sluice.tenant_queue_depth AS d (tenant, shard, queued, running)
SELECT j.tenant, 0, 0, count(*) FROM sluice.jobs j WHERE j.state = 'running' GROUP BY j.tenant ORDER BY j.tenant
ON CONFLICT (tenant, shard) DO UPDATE SET running = excluded.running;
