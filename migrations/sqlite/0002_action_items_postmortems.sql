-- Follow-up action items and postmortems. Same conventions as 0001: times are
-- integer nanoseconds (UTC), documents are JSON of the domain types.

CREATE TABLE action_items (
    id          TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    status      INTEGER NOT NULL,
    owner       TEXT NOT NULL,
    due_time    INTEGER,
    create_time INTEGER NOT NULL,
    delete_time INTEGER,
    doc         TEXT NOT NULL
) STRICT;
CREATE INDEX action_items_by_create ON action_items (create_time DESC, id DESC);
CREATE INDEX action_items_by_incident ON action_items (incident_id, create_time DESC, id DESC);
CREATE INDEX action_items_by_owner ON action_items (owner, create_time DESC, id DESC);

CREATE TABLE action_item_labels (
    action_item_id TEXT NOT NULL REFERENCES action_items (id),
    key            TEXT NOT NULL,
    value          TEXT NOT NULL,
    PRIMARY KEY (action_item_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX action_item_labels_by_key ON action_item_labels (key, value, action_item_id);

-- The postmortem singleton of an incident; absent until first written.
CREATE TABLE postmortems (
    incident_id TEXT PRIMARY KEY REFERENCES incidents (id),
    doc         TEXT NOT NULL
) STRICT;
