-- Validation cost of route specs against direct provider/model specs: 10,000 specs each, spec_errors
-- (spec_ok clears every valid spec). Run on a migrated database: psql "$DB" -f docs/bench/route-validation.sql
SELECT sluice.set_model_limits('openai', 'gpt-4o', 100, NULL, NULL, NULL, NULL);
INSERT INTO sluice.routes (name, targets) VALUES ('mixed', '{anthropic/claude-sonnet-4-5,openai/gpt-4o}'), ('single', '{openai/gpt-4o,openai/gpt-4o-mini}');
CREATE TEMP TABLE s AS SELECT
  (SELECT jsonb_agg(jsonb_build_object('tenant','acme','provider','openai','model','gpt-4o','request',
      jsonb_build_object('messages', jsonb_build_array(jsonb_build_object('role','system','content','be brief'), jsonb_build_object('role','user','content','hello ' || i)),'max_tokens',64,'temperature',0.2,'stop',jsonb_build_array('END')))) FROM generate_series(1,10000) i) AS direct,
  (SELECT jsonb_agg(jsonb_build_object('tenant','acme','route','single','request',
      jsonb_build_object('messages', jsonb_build_array(jsonb_build_object('role','system','content','be brief'), jsonb_build_object('role','user','content','hello ' || i)),'max_tokens',64,'temperature',0.2,'stop',jsonb_build_array('END')))) FROM generate_series(1,10000) i) AS single,
  (SELECT jsonb_agg(jsonb_build_object('tenant','acme','route','mixed','request',
      jsonb_build_object('messages', jsonb_build_array(jsonb_build_object('role','system','content','be brief'), jsonb_build_object('role','user','content','hello ' || i)),'max_tokens',64,'temperature',0.2,'stop',jsonb_build_array('END')))) FROM generate_series(1,10000) i) AS mixed;
\timing on
\echo direct (provider/model), 10000 specs, 5 runs
SELECT count(*) FROM sluice.spec_errors((SELECT direct FROM s));
SELECT count(*) FROM sluice.spec_errors((SELECT direct FROM s));
SELECT count(*) FROM sluice.spec_errors((SELECT direct FROM s));
SELECT count(*) FROM sluice.spec_errors((SELECT direct FROM s));
SELECT count(*) FROM sluice.spec_errors((SELECT direct FROM s));
\echo route of one format
SELECT count(*) FROM sluice.spec_errors((SELECT single FROM s));
SELECT count(*) FROM sluice.spec_errors((SELECT single FROM s));
SELECT count(*) FROM sluice.spec_errors((SELECT single FROM s));
SELECT count(*) FROM sluice.spec_errors((SELECT single FROM s));
SELECT count(*) FROM sluice.spec_errors((SELECT single FROM s));
\echo route mixing both formats (translatable check)
SELECT count(*) FROM sluice.spec_errors((SELECT mixed FROM s));
SELECT count(*) FROM sluice.spec_errors((SELECT mixed FROM s));
SELECT count(*) FROM sluice.spec_errors((SELECT mixed FROM s));
SELECT count(*) FROM sluice.spec_errors((SELECT mixed FROM s));
SELECT count(*) FROM sluice.spec_errors((SELECT mixed FROM s));
