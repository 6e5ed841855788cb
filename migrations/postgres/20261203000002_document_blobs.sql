-- Document contents, addressed by the blake3 of their bytes. Rows are only ever added: a new
-- version of a document is a new blob, and identical bytes are stored once.
CREATE TABLE document_blobs (
    content_hash TEXT   PRIMARY KEY,
    size         BIGINT NOT NULL,
    content      BYTEA  NOT NULL,
    stored_at    TEXT   NOT NULL
);
