-- The signed event log. Columns hold exactly the values that are hashed (docs/log-format.md).
CREATE TABLE events (
    position         INTEGER PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    stream_id        TEXT    NOT NULL,
    stream_version   INTEGER NOT NULL,
    event_type       TEXT    NOT NULL,
    schema_version   INTEGER NOT NULL,
    payload          TEXT    NOT NULL,
    actor            TEXT    NOT NULL,
    request_id       TEXT,
    occurred_at      TEXT    NOT NULL,
    recorded_at      TEXT    NOT NULL,
    correlation_id   TEXT,
    causation_id     TEXT,
    idempotency_key  TEXT,
    prev_hash        BLOB,
    stream_prev_hash BLOB,
    key_id           TEXT    NOT NULL,
    hash             BLOB    NOT NULL,
    signature        BLOB    NOT NULL,
    UNIQUE (stream_id, stream_version)
);

-- Each stream's version and last hash, maintained in the same transaction as the events.
CREATE TABLE streams (
    stream_id TEXT    PRIMARY KEY,
    version   INTEGER NOT NULL,
    last_hash BLOB    NOT NULL
) WITHOUT ROWID;

-- What each idempotency key was first used for.
CREATE TABLE idempotency_keys (
    key            TEXT    PRIMARY KEY,
    request_digest BLOB    NOT NULL,
    stream_id      TEXT    NOT NULL,
    first_position INTEGER NOT NULL,
    last_position  INTEGER NOT NULL,
    first_version  INTEGER NOT NULL,
    last_version   INTEGER NOT NULL
) WITHOUT ROWID;

-- The end of the log; its row is the log lock's anchor.
CREATE TABLE log_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL,
    hash     BLOB,
    key_id   TEXT
);
INSERT INTO log_head (id, position) VALUES (1, 0);

-- Defence in depth: the log is append-only. Verification, not this, is the proof.
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
