-- sas-router shared store, schema version 1. Applied by the router when it connects
-- (src/shared_store/pg.rs), once, in a transaction, under an advisory lock: two nodes
-- starting together do not race. Never edit a released file: add 0002_….sql instead.

-- One row per call and node: the node's id of the call is unique on that node only.
CREATE TABLE sas_calls (
    node        text        NOT NULL,
    id          text        NOT NULL,
    -- The outbox key of the version stored: a later version replaces an earlier one,
    -- never the other way round (a replay after a crash is a no-op).
    rev         bigint      NOT NULL,
    line        text        NOT NULL,
    called      text        NOT NULL,
    arrived_at  timestamptz NOT NULL,
    answered_at timestamptz,
    ended_at    timestamptz,
    outcome     text,
    seat        text,
    wait_ms     bigint,
    talk_ms     bigint,
    -- The whole record, as `sas-router calls show --json` prints it (caller in clear).
    record      jsonb       NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node, id)
);
CREATE INDEX sas_calls_arrived ON sas_calls (arrived_at DESC);
CREATE INDEX sas_calls_id ON sas_calls (id);

-- The audit log of every node: who read or purged which recording, when.
CREATE TABLE sas_audit (
    node      text        NOT NULL,
    -- The entry's id in its node's database.
    id        bigint      NOT NULL,
    at        timestamptz NOT NULL,
    actor     text        NOT NULL,
    action    text        NOT NULL,
    target    text        NOT NULL,
    detail    text,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node, id)
);
CREATE INDEX sas_audit_at ON sas_audit (at DESC);
