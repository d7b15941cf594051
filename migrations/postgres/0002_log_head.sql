-- The head of the log: the sequence of the last event. A write group that has
-- events takes the next numbers from it with one UPDATE just before it writes
-- them; the row lock that UPDATE takes is held until the group commits, so
-- groups of every replica append to the log one at a time, in commit order.
CREATE TABLE log_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    sequence BIGINT NOT NULL
);
INSERT INTO log_head (id, sequence) SELECT 1, coalesce(max(sequence), 0) FROM events;
