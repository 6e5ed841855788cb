-- The log's Merkle tree (docs/log-format.md section 16): every perfect subtree's root, by level
-- and index. Derived from the events' hashes and rebuilt from them when missing.
CREATE TABLE tree_nodes (
    level      SMALLINT NOT NULL,
    node_index BIGINT   NOT NULL,
    hash       BYTEA    NOT NULL,
    PRIMARY KEY (level, node_index)
);

-- How many leaves the stored tree holds; moved forward only together with its nodes.
CREATE TABLE tree_state (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT  NOT NULL
);
INSERT INTO tree_state (id, size) VALUES (1, 0);

-- Every checkpoint the log signed: the signed note as served, with any cosignatures added.
CREATE TABLE checkpoints (
    tree_size BIGINT PRIMARY KEY,
    root      BYTEA  NOT NULL,
    key_id    TEXT   NOT NULL,
    note      TEXT   NOT NULL,
    signed_at TEXT   NOT NULL
);

CREATE FUNCTION docket_refuse_checkpoint_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.tree_size = OLD.tree_size AND NEW.root = OLD.root
        AND NEW.key_id = OLD.key_id THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'checkpoints are append-only; they only gain cosignatures';
END;
$$;

CREATE TRIGGER checkpoints_refuse_change BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION docket_refuse_checkpoint_change();
