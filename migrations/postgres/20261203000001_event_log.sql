-- The signed event log. Columns hold exactly the values that are hashed (docs/log-format.md).
-- The payload is TEXT, not JSONB: it is kept byte for byte as written.
CREATE TABLE events (
    position         BIGINT PRIMARY KEY,
    id               TEXT   NOT NULL UNIQUE,
    stream_id        TEXT   NOT NULL,
    stream_version   BIGINT NOT NULL,
    event_type       TEXT   NOT NULL,
    schema_version   BIGINT NOT NULL,
    payload          TEXT   NOT NULL,
    actor            TEXT   NOT NULL,
    request_id       TEXT,
    occurred_at      TEXT   NOT NULL,
    recorded_at      TEXT   NOT NULL,
    correlation_id   TEXT,
    causation_id     TEXT,
    idempotency_key  TEXT,
    prev_hash        BYTEA,
    stream_prev_hash BYTEA,
    key_id           TEXT   NOT NULL,
    hash             BYTEA  NOT NULL,
    signature        BYTEA  NOT NULL,
    UNIQUE (stream_id, stream_version)
);

CREATE TABLE streams (
    stream_id TEXT   PRIMARY KEY,
    version   BIGINT NOT NULL,
    last_hash BYTEA  NOT NULL
);

CREATE TABLE idempotency_keys (
    key            TEXT   PRIMARY KEY,
    request_digest BYTEA  NOT NULL,
    stream_id      TEXT   NOT NULL,
    first_position BIGINT NOT NULL,
    last_position  BIGINT NOT NULL,
    first_version  BIGINT NOT NULL,
    last_version   BIGINT NOT NULL
);

-- The end of the log. Every write, in every process, moves this row from the position its plan
-- started at (and row-locks it), so the chain has one order however many processes append.
CREATE TABLE log_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL,
    hash     BYTEA,
    key_id   TEXT
);
INSERT INTO log_head (id, position) VALUES (1, 0);

-- Defence in depth: the log is append-only. Verification, not this, is the proof.
CREATE FUNCTION docket_refuse_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END
$$;

CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION docket_refuse_event_change();

CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION docket_refuse_event_change();
