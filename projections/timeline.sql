-- Read model `timeline`: one row per event of a matter, newest last.
CREATE TABLE IF NOT EXISTS rm_timeline{g} (
    position       BIGINT PRIMARY KEY,
    matter_number  TEXT   NOT NULL,
    stream_version BIGINT NOT NULL,
    event_type     TEXT   NOT NULL,
    actor          TEXT   NOT NULL,
    occurred_at    TEXT   NOT NULL,
    recorded_at    TEXT   NOT NULL,
    changed_fields TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_timeline{g}_matter ON rm_timeline{g} (matter_number, position);
