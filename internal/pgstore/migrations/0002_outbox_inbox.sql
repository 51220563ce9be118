-- The outbox: the effects a change implies, written in its transaction.
-- seq is the implying event's seq as 20 zero-padded digits (the coalesced
-- "changed" effect's is 2^64-1, beyond BIGINT), so text order is seq order.
CREATE TABLE outbox (
    consumer TEXT NOT NULL,
    incident BIGINT NOT NULL,
    seq      TEXT NOT NULL,
    record   JSONB NOT NULL,
    PRIMARY KEY (consumer, incident, seq)
);

-- Claims: which Sitrep works a consumer's effects of one incident, until
-- when, and its fencing epoch (raised at each take-over; a write of a stale
-- epoch is refused).
CREATE TABLE outbox_claims (
    consumer TEXT NOT NULL,
    incident BIGINT NOT NULL,
    owner    TEXT NOT NULL,
    epoch    BIGINT NOT NULL,
    until    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, incident)
);

-- The inbox: chat envelopes stored before they are acknowledged, by the
-- Sitrep that received them (owner; taken over when it dies). key is the
-- receiver's arrival order; inbox_seen deduplicates redeliveries for an hour.
CREATE TABLE inbox (
    key     BIGINT NOT NULL,
    source  TEXT NOT NULL,
    id      TEXT NOT NULL,
    record  JSONB NOT NULL
);
CREATE TABLE inbox_seen (
    source TEXT NOT NULL,
    id     TEXT NOT NULL,
    until  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, id)
);

-- The Sitreps sharing the database, each alive until its heartbeat's
-- until: a claim or an envelope of one that is not is taken over.
CREATE TABLE replicas (
    owner TEXT PRIMARY KEY,
    until TIMESTAMPTZ NOT NULL
);
ALTER TABLE inbox ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE inbox ADD PRIMARY KEY (owner, key); -- keys are each receiver's own arrival order

-- The status page's index: incidents anything was published of.
ALTER TABLE incidents ADD COLUMN published BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX incidents_published ON incidents (id) WHERE published;
