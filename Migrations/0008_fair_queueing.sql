-- Fair queueing (start-time fair queueing per tenant and lane; see docs/ARCHITECTURE.md,
-- "Fairness"). The functions are in R60_claim.sql (the claim) and R10_store.sql (the trigger
-- that registers arrivals).

-- A tenant's weight: its share of starts, relative to the other tenants with runnable work in
-- the same lane. A tenant of weight 2 is started twice as often as one of weight 1 while both
-- have a backlog.
ALTER TABLE sluice.tenants
    ADD COLUMN weight double precision NOT NULL DEFAULT 1
        CONSTRAINT tenants_weight_valid CHECK (weight > 0 AND weight <= 1000);

-- The fair queue: one row per tenant and lane that has queued jobs, with the tenant's virtual
-- clock in that lane (the virtual time of its next start). The claim takes tenants in vclock
-- order through fair_queue_order_idx and charges 1 / weight per job it starts; a tenant's jobs
-- are taken in their own (run_at, id) order from jobs_claim_idx. So a claim reads one index
-- entry per tenant it considers, whatever the number of tenants or the depth of their backlogs.
--
-- Rows that cannot run now are parked (parked_until not null, out of the order index): until
-- their first job's run_at (scheduled jobs, retries and deferrals waiting for their time), until
-- a budget hold ends, or 'infinity' for a paused tenant (resuming unparks it: fair_tenant_changed
-- below). A row is created by the first arrival of a tenant in a lane (enqueue, retry, rescue,
-- release, defer: the statement trigger of jobs), deleted by a claim that finds no queued job
-- left. Arrivals hold FOR KEY SHARE on the row until they commit, and claims delete or park a row
-- only after taking it FOR UPDATE SKIP LOCKED, so a row is never removed or parked under a job
-- that is being added (docs/ARCHITECTURE.md, "Fairness").
CREATE TABLE sluice.fair_queue (
    tenant       text COLLATE "C" NOT NULL,
    lane         sluice.lane NOT NULL,
    vclock       double precision NOT NULL,
    parked_until timestamptz,
    PRIMARY KEY (tenant, lane)
) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 1000);
CREATE INDEX fair_queue_order_idx ON sluice.fair_queue (lane, vclock, tenant) WHERE parked_until IS NULL;
CREATE INDEX fair_queue_parked_idx ON sluice.fair_queue (lane, parked_until) WHERE parked_until IS NOT NULL;

-- Each lane's virtual time: the largest virtual start the claim has given a job of the lane. A
-- tenant that arrives (or was idle, throttled or held) starts at this time, not earlier, so it
-- cannot bank a share it did not use; and not later, so its first job goes ahead of the
-- backlogs of tenants already running.
CREATE TABLE sluice.fair_lanes (
    lane  sluice.lane PRIMARY KEY,
    vtime double precision NOT NULL DEFAULT 0
) WITH (fillfactor = 50);
INSERT INTO sluice.fair_lanes (lane) SELECT l FROM unnest(enum_range(NULL::sluice.lane)) AS l;

-- Jobs queued before this upgrade: each tenant and lane with queued jobs starts at virtual time
-- 0, so they are claimed as before, in turns between tenants.
INSERT INTO sluice.fair_queue (tenant, lane, vclock)
SELECT DISTINCT j.tenant, j.lane, 0 FROM sluice.jobs j WHERE j.state = 'queued';

-- Pausing, resuming, holding or releasing a tenant unparks its rows; the next claim parks them
-- again if the tenant still may not run. (The function is owned by R60_claim.sql; created here
-- because versioned files run before the repeatable ones.)
CREATE FUNCTION sluice.fair_tenant_changed() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
-- (Not UPDATE OF: raising a budget clears held_until in a BEFORE trigger, outside the SET list.)
CREATE TRIGGER tenants_fair_changed AFTER UPDATE ON sluice.tenants
    FOR EACH ROW WHEN (OLD.paused IS DISTINCT FROM NEW.paused OR OLD.held_until IS DISTINCT FROM NEW.held_until)
    EXECUTE FUNCTION sluice.fair_tenant_changed();

-- Internal scheduler state: tenant roles neither read nor change it.
REVOKE ALL ON sluice.fair_queue, sluice.fair_lanes FROM PUBLIC;

-- The claim no longer looks for interactive jobs outside a window of tenants (every tenant with
-- runnable work is in fair_queue), so this index only cost a write per interactive job. The
-- window's cursor (sluice.claim_cursor) is no longer read either.
DROP INDEX sluice.jobs_interactive_idx;
DROP TABLE sluice.claim_cursor;
