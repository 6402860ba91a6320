-- Glint's own table (Glance's schema is untouched): removals the scrubber puts off because
-- the store says the data is still in use (RBD clones), with a growing delay between tries.
CREATE TABLE glint_scrub_deferrals (
    location_id BIGINT       PRIMARY KEY,
    attempts    INTEGER      NOT NULL,
    retry_at    TIMESTAMP    NOT NULL,
    reason      TEXT         NOT NULL
);
