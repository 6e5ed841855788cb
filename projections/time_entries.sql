-- Read model `time_entries`: time recorded on matters. The description is client data:
-- `private` is the column form of the sealed `private` member of matter.time_recorded.
CREATE TABLE IF NOT EXISTS rm_time_entries{g} (
    time_entry_id TEXT PRIMARY KEY,
    matter_number TEXT   NOT NULL,
    user_id       TEXT   NOT NULL,
    worked_on     TEXT   NOT NULL,
    minutes       BIGINT NOT NULL,
    billable      BIGINT NOT NULL,
    private       TEXT   NOT NULL,
    position      BIGINT NOT NULL,
    recorded_at   TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_time_entries{g}_matter ON rm_time_entries{g} (matter_number, position);
CREATE INDEX IF NOT EXISTS rm_time_entries{g}_user ON rm_time_entries{g} (user_id, worked_on);
