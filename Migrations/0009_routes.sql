-- Fallback routes (docs/ARCHITECTURE.md, "Routes"). A job names a route instead of a provider
-- and model (`"route": "support-chat"`, stored as provider 'route' and the route's name as
-- model, the form 0001 reserved); the worker tries the route's targets in order and moves on
-- by the error class of a failed call or what admission says about a target.

-- A route's targets, in order: 'provider/model' strings. source says who wrote the row:
-- 'file' rows come from the configuration file's routes: section (written by sluice migrate,
-- which never overwrites an 'operator' row); 'operator' rows from `sluice routes set`.
ALTER TABLE sluice.routes
    ADD COLUMN targets    text[] NOT NULL DEFAULT '{}' CHECK (cardinality(targets) <= 16),
    ADD COLUMN source     text NOT NULL DEFAULT 'operator' CHECK (source IN ('file', 'operator')),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN updated_by text NOT NULL DEFAULT current_user;

-- A route job's progress through its route, NULL on every other job (and on existing rows, so
-- an upgrade changes no job): route_step is the index of the target the next attempt starts
-- from (NULL: the first); route_context_floor the largest context window that was too small
-- for the request (a context_length failure), so later attempts only try larger windows.
ALTER TABLE sluice.jobs
    ADD COLUMN route_step          smallint CHECK (route_step >= 0),
    ADD COLUMN route_context_floor integer CHECK (route_context_floor > 0);

-- Each attempt's target (what was called) and, for route jobs, why the job moved on to the next
-- target after it (fallback), and which targets admission passed over before the call
-- (skipped: [{"target": "p/m", "reason": "…"}]).
ALTER TABLE sluice.attempts
    ADD COLUMN provider text,
    ADD COLUMN model    text,
    ADD COLUMN fallback text,
    ADD COLUMN skipped  jsonb;

-- Every worker reads routes again on its next admission after a change (the same NOTIFY as
-- limits: sluice_limits).
CREATE TRIGGER routes_changed AFTER INSERT OR UPDATE OR DELETE ON sluice.routes
    FOR EACH STATEMENT EXECUTE FUNCTION sluice.limits_changed();

-- API-key pools: limits of one API key of a provider/model (key_id names the key as the
-- configuration names it, never the secret); '' is the model's own limit, shared by all keys.
-- A call of a model whose keys have limits takes the key with the most remaining capacity
-- (decided in the admission script), and a 429 cools down only that key.
ALTER TABLE sluice.model_limits
    ADD COLUMN key_id text NOT NULL DEFAULT '' CHECK (key_id = '' OR key_id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    DROP CONSTRAINT model_limits_pkey,
    ADD PRIMARY KEY (provider, model, key_id);

-- Soft budgets can demote: once a tenant's spend reaches a soft limit (or soft_fraction of a
-- hard one) in the current window, its jobs start in soft_lane (when lower than their own) and
-- through soft_route (a cheaper route), instead of only logging a warning. NULL: no demotion.
ALTER TABLE sluice.tenants
    ADD COLUMN soft_lane  text CHECK (soft_lane IN ('high', 'normal', 'batch')),
    ADD COLUMN soft_route text CHECK (soft_route ~ '^[a-z0-9][a-z0-9_.-]{0,62}$');
