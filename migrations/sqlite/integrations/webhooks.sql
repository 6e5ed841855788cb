-- Webhook endpoints, their signing keys, and every delivery with its attempts. With SQLite the
-- tables live in their own file, integrations.db in the data directory, with PostgreSQL in the
-- log's database, prefixed wh_. This file is not a sqlx migration: the webhook store runs it
-- statement by statement each time it opens, so every statement must be idempotent. Times are
-- unix milliseconds (UTC), booleans are 0/1.

-- An endpoint: an API client's URL, its event filter (JSON arrays), its state (registering,
-- active, disabled, removed) and the next log position the dispatcher has still to look at.
CREATE TABLE IF NOT EXISTS wh_endpoints (
    endpoint_id     TEXT   PRIMARY KEY,
    client_id       TEXT   NOT NULL,
    url             TEXT   NOT NULL,
    matters         TEXT   NOT NULL,
    event_types     TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    disabled_reason TEXT,
    next_position   BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS wh_endpoints_client ON wh_endpoints (client_id);

-- Signing keys, sealed by the vault under the endpoint's data key. A key signs until
-- retires_at (NULL: the current key), the public key of an ed25519 key is kept in clear.
CREATE TABLE IF NOT EXISTS wh_keys (
    key_id      TEXT   PRIMARY KEY,
    endpoint_id TEXT   NOT NULL,
    scheme      TEXT   NOT NULL,
    sealed      TEXT   NOT NULL,
    public_key  TEXT,
    created_at  BIGINT NOT NULL,
    retires_at  BIGINT
);

CREATE INDEX IF NOT EXISTS wh_keys_endpoint ON wh_keys (endpoint_id);

-- One delivery per endpoint and event (its id is the webhook-id), claimed by a sender with a
-- lease. failures counts the failed attempts since it was last queued.
CREATE TABLE IF NOT EXISTS wh_deliveries (
    delivery_id     TEXT   PRIMARY KEY,
    endpoint_id     TEXT   NOT NULL,
    position        BIGINT NOT NULL,
    event_id        TEXT   NOT NULL,
    event_type      TEXT   NOT NULL,
    matter          TEXT,
    status          TEXT   NOT NULL,
    attempts        BIGINT NOT NULL,
    failures        BIGINT NOT NULL,
    next_attempt_at BIGINT,
    lease_owner     TEXT,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    UNIQUE (endpoint_id, position)
);

CREATE INDEX IF NOT EXISTS wh_deliveries_due ON wh_deliveries (status, next_attempt_at);

-- Every attempt: when, how long, the status code or the class of error, and a short excerpt
-- of a failed response.
CREATE TABLE IF NOT EXISTS wh_attempts (
    delivery_id     TEXT   NOT NULL,
    attempt         BIGINT NOT NULL,
    started_at      BIGINT NOT NULL,
    latency_ms      BIGINT NOT NULL,
    status_code     BIGINT,
    error_class     TEXT,
    excerpt         TEXT,
    next_attempt_at BIGINT,
    PRIMARY KEY (delivery_id, attempt)
);
