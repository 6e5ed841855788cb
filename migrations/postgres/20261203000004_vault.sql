-- The vault (docs/security-model.md, "Encryption at rest"): one data key per data subject,
-- stored only wrapped by a versioned key-encryption key, and document contents sealed under
-- their matter's data key.
CREATE TABLE data_keys (
    key_id      TEXT    PRIMARY KEY,
    subject     TEXT    NOT NULL UNIQUE,
    kek_version BIGINT,
    wrapped     BYTEA,
    created_at  TEXT    NOT NULL,
    erased_at   TEXT,
    CHECK ((erased_at IS NULL) = (wrapped IS NOT NULL AND kek_version IS NOT NULL))
);
CREATE INDEX data_keys_by_kek ON data_keys (kek_version, key_id);

-- A key is never removed, so an erased subject cannot be given a new one, and an erased key
-- stays erased.
CREATE FUNCTION data_keys_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'data keys are never deleted; erase them';
    END IF;
    IF OLD.erased_at IS NOT NULL THEN
        RAISE EXCEPTION 'an erased data key stays erased';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER data_keys_guard BEFORE UPDATE OR DELETE ON data_keys
    FOR EACH ROW EXECUTE FUNCTION data_keys_guard();

CREATE TABLE document_contents (
    key_id       TEXT   NOT NULL,
    content_hash TEXT   NOT NULL,
    size         BIGINT NOT NULL,
    sealed       BYTEA  NOT NULL,
    stored_at    TEXT   NOT NULL,
    PRIMARY KEY (key_id, content_hash)
);
