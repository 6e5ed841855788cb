-- The credential store of the identity layer: secrets and mutable counters that are not events.
-- It lives in its own file, identity.db, beside the log. This file is not a sqlx migration: the
-- credential store runs it statement by statement each time it opens, so every statement must
-- be idempotent. Times are unix seconds (UTC); booleans are 0/1.

-- The current password of each user, as an Argon2id PHC string.
CREATE TABLE IF NOT EXISTS auth_passwords (
    user_id    TEXT   PRIMARY KEY,
    phc        TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

-- TOTP per user: the active secret (NULL until an enrolment is confirmed) with the last time
-- step accepted, and a pending secret awaiting confirmation. Secrets are hex.
CREATE TABLE IF NOT EXISTS auth_totp (
    user_id            TEXT PRIMARY KEY,
    secret_hex         TEXT,
    last_step          BIGINT,
    pending_secret_hex TEXT
);

-- Recovery codes, by hash only; a used code keeps its row with used_at set.
CREATE TABLE IF NOT EXISTS auth_recovery_codes (
    user_id    TEXT   NOT NULL,
    code_hash  TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- Single-use, expiring enrolment tokens, by hash.
CREATE TABLE IF NOT EXISTS auth_enrolments (
    token_hash TEXT   PRIMARY KEY,
    user_id    TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE INDEX IF NOT EXISTS auth_enrolments_user ON auth_enrolments (user_id);

-- Sessions, found by the hash of their opaque token and named by a separate id for review and
-- revocation.
CREATE TABLE IF NOT EXISTS auth_sessions (
    session_id          TEXT   PRIMARY KEY,
    token_hash          TEXT   NOT NULL UNIQUE,
    principal           TEXT   NOT NULL,
    client_address      TEXT,
    created_at          BIGINT NOT NULL,
    last_seen_at        BIGINT NOT NULL,
    idle_timeout_secs   BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    step_up_at          BIGINT,
    revoked_at          BIGINT
);

CREATE INDEX IF NOT EXISTS auth_sessions_principal ON auth_sessions (principal);

-- API client keys, by the hash of their secret.
CREATE TABLE IF NOT EXISTS auth_api_keys (
    key_id       TEXT   PRIMARY KEY,
    client_id    TEXT   NOT NULL,
    secret_hash  TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
);

CREATE INDEX IF NOT EXISTS auth_api_keys_client ON auth_api_keys (client_id);

-- Failed-attempt counters and locks, keyed by subject text such as "account:<user id>".
CREATE TABLE IF NOT EXISTS auth_throttle (
    subject         TEXT   PRIMARY KEY,
    failures        BIGINT NOT NULL,
    last_failure_at BIGINT,
    locked          BIGINT NOT NULL
);
