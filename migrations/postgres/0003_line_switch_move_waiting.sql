-- sas-router shared store, schema version 3: a switch made with "move the waiting calls"
-- says so, so that the other nodes move the calls waiting on them too when they apply it
-- (src/shared_store/lines.rs). Rows written before this version moved nothing elsewhere.
ALTER TABLE sas_line_switches
    ADD COLUMN move_waiting boolean NOT NULL DEFAULT false;
