-- Read model `contacts`: people and organisations, and the blind indexes that conflict checks,
-- contact search and exact lookups use. No client data in the clear: `private` is the column
-- form of the latest contact.created / contact.updated event's sealed `private` member, and
-- `blind` is vault.blind(kind, value) of a folded name token, an email or a `scheme:value`
-- identifier. A contact's entries go when it is erased (`erased` = 1). Lists order by
-- contact_id: names are sealed, so SQL cannot sort by them.
CREATE TABLE IF NOT EXISTS rm_contacts{g} (
    contact_id     TEXT PRIMARY KEY,
    kind           TEXT   NOT NULL,
    private        TEXT   NOT NULL,
    erased         BIGINT NOT NULL DEFAULT 0,
    version        BIGINT NOT NULL,
    position       BIGINT NOT NULL,
    created_at     TEXT   NOT NULL,
    updated_at     TEXT   NOT NULL
);

CREATE TABLE IF NOT EXISTS rm_contact_tokens{g} (
    kind       TEXT NOT NULL,
    blind      TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    PRIMARY KEY (kind, blind, contact_id)
);
CREATE INDEX IF NOT EXISTS rm_contact_tokens{g}_contact ON rm_contact_tokens{g} (contact_id);
