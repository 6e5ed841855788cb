-- Read model `notes`: notes on matters, with their privileged flag. Subject and body are client
-- data: `private` is the column form of the sealed `private` member of the note's latest
-- matter.note_added / matter.note_edited.
CREATE TABLE IF NOT EXISTS rm_notes{g} (
    note_id       TEXT PRIMARY KEY,
    matter_number TEXT   NOT NULL,
    privileged    BIGINT NOT NULL,
    private       TEXT   NOT NULL,
    author        TEXT   NOT NULL,
    position      BIGINT NOT NULL,
    created_at    TEXT   NOT NULL,
    edited_at     TEXT
);
CREATE INDEX IF NOT EXISTS rm_notes{g}_matter ON rm_notes{g} (matter_number, position);
