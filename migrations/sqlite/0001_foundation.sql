-- Times are integer nanoseconds since the Unix epoch (UTC); ids are hyphenated
-- UUIDv7 text, so id order is creation order. Whole resources are stored as JSON
-- documents of the domain types; the columns beside them exist to be filtered on.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE incidents (
    id          TEXT PRIMARY KEY,
    number      INTEGER NOT NULL UNIQUE,
    title       TEXT NOT NULL,
    -- Lower-cased title for the case-insensitive query; SQLite's own case
    -- folding stops at ASCII and the seed reports are in French.
    title_key   TEXT NOT NULL,
    kind        INTEGER NOT NULL,
    severity    INTEGER,
    status      INTEGER NOT NULL,
    is_open     INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    delete_time INTEGER,
    doc         TEXT NOT NULL
) STRICT;
CREATE INDEX incidents_by_create ON incidents (create_time DESC, id DESC);

-- Current component impacts of each incident: the component filter and the
-- derived component status read this.
CREATE TABLE incident_components (
    incident_id  TEXT NOT NULL REFERENCES incidents (id),
    component_id TEXT NOT NULL REFERENCES components (id),
    impact       INTEGER NOT NULL,
    PRIMARY KEY (incident_id, component_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX incident_components_by_component ON incident_components (component_id, incident_id);

CREATE TABLE incident_labels (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (incident_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX incident_labels_by_key ON incident_labels (key, value, incident_id);

CREATE TABLE status_updates (
    id          TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    create_time INTEGER NOT NULL,
    doc         TEXT NOT NULL
) STRICT;
CREATE INDEX status_updates_by_incident ON status_updates (incident_id, create_time DESC, id DESC);

CREATE TABLE components (
    id          TEXT PRIMARY KEY,
    parent_id   TEXT REFERENCES components (id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    delete_time INTEGER,
    version     INTEGER NOT NULL
) STRICT;
CREATE INDEX components_by_create ON components (create_time DESC, id DESC);
CREATE INDEX components_by_parent ON components (parent_id);
-- Names are unique among live siblings ("Login" may exist under two groups).
CREATE UNIQUE INDEX components_sibling_name
    ON components (coalesce(parent_id, ''), name) WHERE delete_time IS NULL;

-- The append-only timeline. Never updated, never deleted from.
CREATE TABLE events (
    sequence    INTEGER PRIMARY KEY,
    kind        INTEGER NOT NULL,
    incident_id TEXT,
    event_time  INTEGER NOT NULL,
    occur_time  INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    snapshot    TEXT,
    payload     TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_incident ON events (incident_id, sequence);

-- AIP-155 request_id records, keyed by (caller, method, request_id).
CREATE TABLE request_ids (
    caller      TEXT NOT NULL,
    method      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    response    TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (caller, method, request_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX request_ids_by_time ON request_ids (create_time);
