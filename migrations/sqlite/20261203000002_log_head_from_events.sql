-- The head and the stream tips follow from the events themselves: every insert must extend the
-- log exactly where it ends (next position, linked to the last hash, next stream version,
-- linked to the stream's last hash), and then advances the head and the stream's tip. A writer
-- working from a stale view of the log is refused here, inside its own transaction.
CREATE TRIGGER events_extend_the_log BEFORE INSERT ON events
BEGIN
    SELECT RAISE(ABORT, 'docket: stale log head')
    WHERE NEW.position != (SELECT position FROM log_head WHERE id = 1) + 1
       OR NEW.prev_hash IS NOT (SELECT hash FROM log_head WHERE id = 1)
       OR NEW.stream_version != COALESCE((SELECT version FROM streams WHERE stream_id = NEW.stream_id), 0) + 1
       OR NEW.stream_prev_hash IS NOT (SELECT last_hash FROM streams WHERE stream_id = NEW.stream_id);
END;

CREATE TRIGGER events_advance_the_head AFTER INSERT ON events
BEGIN
    UPDATE log_head
       SET position = NEW.position,
           hash = NEW.hash,
           key_id = CASE WHEN NEW.event_type = 'keys.rotated'
                         THEN json_extract(NEW.payload, '$.next_key_id')
                         ELSE NEW.key_id END
     WHERE id = 1;
    INSERT INTO streams (stream_id, version, last_hash)
    VALUES (NEW.stream_id, NEW.stream_version, NEW.hash)
    ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_hash = excluded.last_hash;
END;
