-- sas-router shared store, schema version 2: lines switched to the backup centre, shared
-- by every node (src/shared_store/lines.rs). Each node polls this table every second and
-- applies what another node changed, so a switch made on one node holds on the other
-- after a failover.

-- Each change (switch or restore) takes the next number: a node applies a row only if it
-- is newer than the last it applied or wrote for that line.
CREATE SEQUENCE sas_line_switch_rev;

-- One row per line that was ever switched: its current state and the last change.
CREATE TABLE sas_line_switches (
    line     text        PRIMARY KEY,
    -- true: new calls of the line go to its entries' backup step; false: restored.
    switched boolean     NOT NULL,
    -- The node the change was made on, who made it, why, when.
    node     text        NOT NULL,
    actor    text        NOT NULL,
    reason   text        NOT NULL,
    at       timestamptz NOT NULL,
    rev      bigint      NOT NULL DEFAULT nextval('sas_line_switch_rev')
);
