-- API keys get an id to be named by (list, revoke), a name, the first characters of the
-- key to be recognised by (never enough to use it), and when they were last used (as a
-- gateway looks them up: at most once per key and gateway per cache period).
ALTER TABLE api_keys ADD COLUMN key_id bigserial UNIQUE;
ALTER TABLE api_keys ADD COLUMN name text NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN hint text NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
