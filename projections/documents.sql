-- Read model `documents`: document metadata and every version (versions are never replaced).
-- Title, description and filename are client data: `private` is the column form of the sealed
-- `private` member of matter.document_added (on the document) and of each version's event.
CREATE TABLE IF NOT EXISTS rm_documents{g} (
    document_id    TEXT PRIMARY KEY,
    matter_number  TEXT   NOT NULL,
    document_type  TEXT   NOT NULL,
    private        TEXT   NOT NULL,
    latest_version BIGINT NOT NULL,
    position       BIGINT NOT NULL,
    created_at     TEXT   NOT NULL,
    updated_at     TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_documents{g}_matter ON rm_documents{g} (matter_number, position);

CREATE TABLE IF NOT EXISTS rm_document_versions{g} (
    document_id  TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    content_hash TEXT   NOT NULL,
    size         BIGINT NOT NULL,
    media_type   TEXT   NOT NULL,
    private      TEXT   NOT NULL,
    uploaded_by  TEXT   NOT NULL,
    added_at     TEXT   NOT NULL,
    PRIMARY KEY (document_id, version)
);
