-- Incidents, their append-only timelines, the channel and link indexes, the
-- webhooks' dedup keys and each incident's memo. A record is the incident's
-- JSON, as bbolt keeps it; the columns beside it are what queries select on.
CREATE TABLE incidents (
    id          BIGINT PRIMARY KEY,
    record      JSONB NOT NULL,
    open        BOOLEAN NOT NULL,
    severity    SMALLINT NOT NULL,
    declared_at TIMESTAMPTZ NOT NULL,
    due_at      TIMESTAMPTZ            -- the next reminder (Incident.NextReminder), when one is due
);
CREATE SEQUENCE incidents_id AS BIGINT OWNED BY incidents.id;
CREATE INDEX incidents_open ON incidents (id) WHERE open;
CREATE INDEX incidents_declared ON incidents (declared_at);
CREATE INDEX incidents_due ON incidents (due_at) WHERE due_at IS NOT NULL;

CREATE TABLE events (
    incident BIGINT NOT NULL REFERENCES incidents (id),
    seq      BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    at       TIMESTAMPTZ NOT NULL,
    record   JSONB NOT NULL,
    PRIMARY KEY (incident, seq)
);

CREATE TABLE channels (
    channel  TEXT PRIMARY KEY,
    incident BIGINT NOT NULL REFERENCES incidents (id)
);

CREATE TABLE links (
    system   TEXT NOT NULL,
    ref      TEXT NOT NULL,
    incident BIGINT NOT NULL REFERENCES incidents (id),
    PRIMARY KEY (system, ref)
);

CREATE TABLE dedup (
    key   TEXT PRIMARY KEY,
    until TIMESTAMPTZ NOT NULL
);
CREATE INDEX dedup_until ON dedup (until);

CREATE TABLE memos (
    incident BIGINT NOT NULL REFERENCES incidents (id),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (incident, key)
);
