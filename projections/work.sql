-- Read model `work`: tasks and calendar entries (hearings, deadlines, meetings) across matters.
CREATE TABLE IF NOT EXISTS rm_tasks{g} (
    task_id       TEXT PRIMARY KEY,
    matter_number TEXT   NOT NULL,
    title         TEXT   NOT NULL,
    assignee      TEXT,
    due_on        TEXT,
    status        TEXT   NOT NULL,
    position      BIGINT NOT NULL,
    created_at    TEXT   NOT NULL,
    updated_at    TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_tasks{g}_matter ON rm_tasks{g} (matter_number, position);
CREATE INDEX IF NOT EXISTS rm_tasks{g}_due ON rm_tasks{g} (status, due_on, task_id);

CREATE TABLE IF NOT EXISTS rm_calendar{g} (
    entry_id      TEXT PRIMARY KEY,
    matter_number TEXT   NOT NULL,
    kind          TEXT   NOT NULL,
    title         TEXT   NOT NULL,
    starts_at     TEXT   NOT NULL,
    ends_at       TEXT,
    all_day       BIGINT NOT NULL,
    rule          TEXT,
    location      TEXT,
    cancelled     BIGINT NOT NULL,
    position      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_calendar{g}_matter ON rm_calendar{g} (matter_number, starts_at);
CREATE INDEX IF NOT EXISTS rm_calendar{g}_start ON rm_calendar{g} (starts_at, entry_id);
