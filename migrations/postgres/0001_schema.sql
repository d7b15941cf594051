-- The PostgreSQL schema: the same tables, columns and meanings as the SQLite
-- one (migrations/sqlite, as of its 0006), so the store's statements read and
-- write both. Times are integer nanoseconds since the Unix epoch (UTC); ids are
-- hyphenated UUIDv7 text, so id order is creation order; whole resources are
-- JSON documents of the domain types (kept as text, as written), the columns
-- beside them exist to be filtered on. Every integer is BIGINT: the store
-- reads integers as 64-bit on both databases. Codes are the proto's numbers.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE incidents (
    id          TEXT PRIMARY KEY,
    number      BIGINT NOT NULL UNIQUE,
    title       TEXT NOT NULL,
    -- Lower-cased title (Rust's Unicode lower-casing) for the case-insensitive
    -- query, so both databases match exactly the same titles.
    title_key   TEXT NOT NULL,
    kind        BIGINT NOT NULL,
    severity    BIGINT,
    status      BIGINT NOT NULL,
    is_open     BIGINT NOT NULL,
    create_time BIGINT NOT NULL,
    delete_time BIGINT,
    -- 1 PUBLIC, 2 INTERNAL.
    visibility  BIGINT NOT NULL DEFAULT 2,
    doc         TEXT NOT NULL
);
CREATE INDEX incidents_by_create ON incidents (create_time DESC, id DESC);
-- The public list: only public, live incidents, newest first.
CREATE INDEX incidents_public_by_create ON incidents (create_time DESC, id DESC)
    WHERE visibility = 1 AND delete_time IS NULL;
-- ListIncidents' query filter: a substring of the folded title, served by
-- trigrams (the SQLite schema's FTS5 trigram table does the same there).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX incidents_title_trigrams ON incidents USING gin (title_key gin_trgm_ops);

CREATE TABLE components (
    id          TEXT PRIMARY KEY,
    parent_id   TEXT REFERENCES components (id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    delete_time BIGINT,
    version     BIGINT NOT NULL
);
CREATE INDEX components_by_create ON components (create_time DESC, id DESC);
CREATE INDEX components_by_parent ON components (parent_id);
-- Names are unique among live siblings ("Login" may exist under two groups).
CREATE UNIQUE INDEX components_sibling_name
    ON components (coalesce(parent_id, ''), name) WHERE delete_time IS NULL;

-- Current component impacts of each incident: the component filter and the
-- derived component status read this.
CREATE TABLE incident_components (
    incident_id  TEXT NOT NULL REFERENCES incidents (id),
    component_id TEXT NOT NULL REFERENCES components (id),
    impact       BIGINT NOT NULL,
    PRIMARY KEY (incident_id, component_id)
);
CREATE INDEX incident_components_by_component ON incident_components (component_id, incident_id);

CREATE TABLE incident_labels (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (incident_id, key)
);
CREATE INDEX incident_labels_by_key ON incident_labels (key, value, incident_id);

CREATE TABLE status_updates (
    id          TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    create_time BIGINT NOT NULL,
    visibility  BIGINT NOT NULL DEFAULT 1,
    doc         TEXT NOT NULL
);
CREATE INDEX status_updates_by_incident ON status_updates (incident_id, create_time DESC, id DESC);

-- The append-only timeline, in its wire form (`body`: an encoded
-- incident.v1.SubscribeTimelineResponse), beside the keys subscription
-- filters read. Never updated, never deleted from. Sequences are taken under
-- the log lock held to COMMIT (see the store), never from a SEQUENCE: a
-- sequence's numbers become visible out of commit order.
CREATE TABLE events (
    sequence      BIGINT PRIMARY KEY,
    kind          BIGINT NOT NULL,
    incident_id   TEXT,
    severity      BIGINT,
    -- 16-byte component ids, concatenated.
    component_ids BYTEA NOT NULL DEFAULT '\x',
    body          BYTEA NOT NULL
);
CREATE INDEX events_by_incident ON events (incident_id, sequence);

-- AIP-155 request_id records, keyed by (caller, method, request_id).
CREATE TABLE request_ids (
    caller      TEXT NOT NULL,
    method      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    fingerprint BYTEA NOT NULL,
    response    TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    PRIMARY KEY (caller, method, request_id)
);
CREATE INDEX request_ids_by_time ON request_ids (create_time);

CREATE TABLE action_items (
    id          TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    status      BIGINT NOT NULL,
    owner       TEXT NOT NULL,
    due_time    BIGINT,
    create_time BIGINT NOT NULL,
    delete_time BIGINT,
    doc         TEXT NOT NULL
);
CREATE INDEX action_items_by_create ON action_items (create_time DESC, id DESC);
CREATE INDEX action_items_by_incident ON action_items (incident_id, create_time DESC, id DESC);
CREATE INDEX action_items_by_owner ON action_items (owner, create_time DESC, id DESC);

CREATE TABLE action_item_labels (
    action_item_id TEXT NOT NULL REFERENCES action_items (id),
    key            TEXT NOT NULL,
    value          TEXT NOT NULL,
    PRIMARY KEY (action_item_id, key)
);
CREATE INDEX action_item_labels_by_key ON action_item_labels (key, value, action_item_id);

-- The postmortem singleton of an incident; absent until first written.
CREATE TABLE postmortems (
    incident_id TEXT PRIMARY KEY REFERENCES incidents (id),
    doc         TEXT NOT NULL
);

-- Seeds loaded into this database, by their permanent natural key, so loading
-- twice changes nothing (request_id records are pruned; these never are).
CREATE TABLE seeds (
    key         TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    source      TEXT NOT NULL,
    load_time   BIGINT NOT NULL
);

-- Notes corrected since they were added, as they now are. A note without a
-- row is as its NOTE_ADDED event says.
CREATE TABLE notes (
    sequence    BIGINT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    visibility  BIGINT NOT NULL,
    doc         TEXT NOT NULL
);
