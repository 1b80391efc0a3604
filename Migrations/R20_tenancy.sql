-- Repeatable migration (see docs/ARCHITECTURE.md, "Schema evolution"). The R files are applied
-- in name order, after the versioned ones, whenever any of them changed. Edit in place; every
-- statement must be safe to run again (CREATE OR REPLACE; DROP FUNCTION IF EXISTS first when a
-- signature or return type changes). Tables, types, indexes, triggers, policies and grants
-- belong in new versioned files.
--
-- Tenant binding: whom a session (or a SECURITY DEFINER function) acts for.

-- The tenant bound to the session's role, or NULL for operator/service roles. The role is the
-- one set with SET ROLE, else the login role: unlike current_user, these stay the caller's
-- inside the SECURITY DEFINER functions below (enqueue_specs, cancel: see acting_tenant), which
-- is how they know whom they act for. Outside such functions it is current_user.
--
-- The small helpers of the enqueue path are PL/pgSQL rather than SQL functions: PL/pgSQL keeps
-- a statement's plan for the session, while a non-inlined SQL function is planned again on
-- every call (0.1-1.5 ms each, most of a single enqueue).
CREATE OR REPLACE FUNCTION sluice.current_tenant() RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT r.tenant FROM sluice.tenant_roles r
             WHERE r.role_name = coalesce(nullif(current_setting('role'), 'none'), session_user));
END
$$;

-- Whom a SECURITY DEFINER function acts for: the tenant bound to the session's role, or NULL
-- for operator and service roles. A member of sluice_tenant that is bound to no tenant (for
-- instance a tenant role that ran SET ROLE sluice_tenant) is refused: without this it would
-- count as an operator once row-level security no longer applies.
CREATE OR REPLACE FUNCTION sluice.acting_tenant() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, sluice AS $$
DECLARE
    r name := coalesce(nullif(current_setting('role'), 'none'), session_user);
    t text;
BEGIN
    SELECT b.tenant INTO t FROM sluice.tenant_roles b WHERE b.role_name = r;
    IF t IS NULL AND (r = 'sluice_tenant'
                      OR EXISTS (SELECT 1 FROM pg_auth_members m
                                   JOIN pg_roles g ON g.oid = m.roleid AND g.rolname = 'sluice_tenant'
                                   JOIN pg_roles u ON u.oid = m.member AND u.rolname = r)) THEN
        RAISE EXCEPTION 'role % is a member of sluice_tenant but bound to no tenant', r
            USING ERRCODE = 'SL006', COLUMN = 'tenant', CONSTRAINT = 'permitted';
    END IF;
    RETURN t;
END
$$;

-- A tenant's queued jobs (committed and this transaction's own). Invoker rights: a role bound
-- to a tenant reads only its own tenant's counters (row-level security on
-- tenant_queue_depth), so for any other tenant it gets 0.
CREATE OR REPLACE FUNCTION sluice.queue_depth(p_tenant text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(sum(d.queued), 0)::bigint FROM sluice.tenant_queue_depth d WHERE d.tenant = p_tenant);
END
$$;
