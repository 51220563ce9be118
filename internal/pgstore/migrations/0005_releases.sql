-- Releases (internal/releases): each one record with its timeline, few
-- per day. active is what the driver and the header catch-up read.
CREATE TABLE releases (
    id         BIGSERIAL PRIMARY KEY,
    service    TEXT        NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    active     BOOLEAN     NOT NULL,
    record     JSONB       NOT NULL
);
CREATE INDEX releases_active ON releases (id) WHERE active;
CREATE INDEX releases_service ON releases (service, id);
