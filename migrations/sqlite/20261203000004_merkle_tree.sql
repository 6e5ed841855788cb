-- The log's Merkle tree (docs/log-format.md section 16): every perfect subtree's root, by level
-- and index. Derived from the events' hashes and rebuilt from them when missing.
CREATE TABLE tree_nodes (
    level      INTEGER NOT NULL,
    node_index INTEGER NOT NULL,
    hash       BLOB    NOT NULL,
    PRIMARY KEY (level, node_index)
) WITHOUT ROWID;

-- How many leaves the stored tree holds; moved forward only together with its nodes.
CREATE TABLE tree_state (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL
);
INSERT INTO tree_state (id, size) VALUES (1, 0);

-- Every checkpoint the log signed: the signed note as served, with any cosignatures added.
CREATE TABLE checkpoints (
    tree_size INTEGER PRIMARY KEY,
    root      BLOB    NOT NULL,
    key_id    TEXT    NOT NULL,
    note      TEXT    NOT NULL,
    signed_at TEXT    NOT NULL
);

CREATE TRIGGER checkpoints_refuse_delete BEFORE DELETE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are append-only');
END;

CREATE TRIGGER checkpoints_keep_their_root BEFORE UPDATE OF tree_size, root, key_id ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'a checkpoint only gains cosignatures');
END;
