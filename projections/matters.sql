-- Read model `matters`: one row per matter, its team, its conflict checks, and the firm's
-- custom field definitions. `{g}` is the generation suffix; readers use the views named
-- without it (rm_matters, rm_matter_team, ...).
--
-- No client data in the clear. `private` (the description) is the column form of the sealed
-- `private` member of the last event that set it; a sensitive custom field's value in
-- `custom_fields` is {"sealed_ref": <column form>}; a conflict check's `private` holds its
-- query and notes. `erased` = 1 once subject.erased destroyed the matter's key; `frozen` = 1
-- between matter.frozen and matter.unfrozen (read-only for an incident).
CREATE TABLE IF NOT EXISTS rm_matters{g} (
    number                    TEXT PRIMARY KEY,
    title                     TEXT   NOT NULL,
    title_folded              TEXT   NOT NULL,
    private                   TEXT,
    practice_area             TEXT   NOT NULL,
    status                    TEXT   NOT NULL,
    responsible_attorney      TEXT   NOT NULL,
    originating_attorney      TEXT,
    opened_on                 TEXT   NOT NULL,
    closed_on                 TEXT,
    statute_of_limitations_on TEXT,
    custom_fields             TEXT   NOT NULL,
    firm_visible              BIGINT NOT NULL DEFAULT 0,
    erased                    BIGINT NOT NULL DEFAULT 0,
    frozen                    BIGINT NOT NULL DEFAULT 0,
    version                   BIGINT NOT NULL,
    position                  BIGINT NOT NULL,
    created_at                TEXT   NOT NULL,
    updated_at                TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_matters{g}_status ON rm_matters{g} (status, number);
CREATE INDEX IF NOT EXISTS rm_matters{g}_area ON rm_matters{g} (practice_area, number);
CREATE INDEX IF NOT EXISTS rm_matters{g}_attorney ON rm_matters{g} (responsible_attorney, number);
CREATE INDEX IF NOT EXISTS rm_matters{g}_opened ON rm_matters{g} (opened_on, number);
CREATE INDEX IF NOT EXISTS rm_matters{g}_area_opened ON rm_matters{g} (practice_area, opened_on, number);
CREATE INDEX IF NOT EXISTS rm_matters{g}_status_opened ON rm_matters{g} (status, opened_on, number);

CREATE TABLE IF NOT EXISTS rm_matter_team{g} (
    matter_number TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    capacity      TEXT NOT NULL,
    PRIMARY KEY (matter_number, user_id)
);
CREATE INDEX IF NOT EXISTS rm_matter_team{g}_user ON rm_matter_team{g} (user_id);

CREATE TABLE IF NOT EXISTS rm_conflict_checks{g} (
    check_id      TEXT PRIMARY KEY,
    matter_number TEXT   NOT NULL,
    outcome       TEXT   NOT NULL,
    reviewer      TEXT   NOT NULL,
    private       TEXT   NOT NULL,
    hits          TEXT   NOT NULL,
    position      BIGINT NOT NULL,
    recorded_at   TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_conflict_checks{g}_matter ON rm_conflict_checks{g} (matter_number, position);

CREATE TABLE IF NOT EXISTS rm_custom_fields{g} (
    key       TEXT PRIMARY KEY,
    label     TEXT   NOT NULL,
    kind      TEXT   NOT NULL,
    choices   TEXT   NOT NULL,
    sensitive BIGINT NOT NULL
);
