-- Read model `parties`: who is what on which matter, searchable by matter and by contact.
CREATE TABLE IF NOT EXISTS rm_parties{g} (
    party_id      TEXT PRIMARY KEY,
    matter_number TEXT   NOT NULL,
    contact_id    TEXT   NOT NULL,
    role          TEXT   NOT NULL,
    position      BIGINT NOT NULL,
    added_at      TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_parties{g}_matter ON rm_parties{g} (matter_number, position);
CREATE INDEX IF NOT EXISTS rm_parties{g}_contact ON rm_parties{g} (contact_id, position);
