-- Read model `contacts`: people and organisations, and the normalised name tokens that
-- conflict checks search.
CREATE TABLE IF NOT EXISTS rm_contacts{g} (
    contact_id     TEXT PRIMARY KEY,
    kind           TEXT   NOT NULL,
    display_name   TEXT   NOT NULL,
    name_folded    TEXT   NOT NULL,
    details        TEXT   NOT NULL,
    version        BIGINT NOT NULL,
    position       BIGINT NOT NULL,
    created_at     TEXT   NOT NULL,
    updated_at     TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_contacts{g}_name ON rm_contacts{g} (name_folded, contact_id);

CREATE TABLE IF NOT EXISTS rm_contact_tokens{g} (
    token      TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    PRIMARY KEY (token, contact_id)
);
CREATE INDEX IF NOT EXISTS rm_contact_tokens{g}_contact ON rm_contact_tokens{g} (contact_id);
