-- How far each engine partition's events are persisted without a gap: the writer
-- resumes its gap fill from here.
CREATE TABLE partition_progress (
    partition        integer PRIMARY KEY,
    persisted_through bigint NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
