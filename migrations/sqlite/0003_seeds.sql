-- Seeds loaded into this database, by their permanent natural key, so loading
-- twice changes nothing (request_id records are pruned; these never are).
CREATE TABLE seeds (
    key         TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    source      TEXT NOT NULL,
    load_time   INTEGER NOT NULL
) STRICT;
