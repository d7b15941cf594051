-- Audiences: who may see an incident, a status update and a note. Codes are
-- the proto's Visibility numbers: 1 PUBLIC, 2 INTERNAL.
--
-- Incidents recorded before this were visible to every token; from now on an
-- incident is INTERNAL unless made PUBLIC, except those loaded from the seed
-- reports, which were public reports to begin with.
ALTER TABLE incidents ADD COLUMN visibility INTEGER NOT NULL DEFAULT 2;
UPDATE incidents
SET visibility = 1, doc = json_set(doc, '$.visibility', 'VISIBILITY_PUBLIC')
WHERE id IN (SELECT incident_id FROM seeds);
UPDATE incidents
SET doc = json_set(doc, '$.visibility', 'VISIBILITY_INTERNAL')
WHERE visibility = 2;
-- The public list: only public, live incidents, newest first.
CREATE INDEX incidents_public_by_create ON incidents (create_time DESC, id DESC)
    WHERE visibility = 1 AND delete_time IS NULL;

ALTER TABLE status_updates ADD COLUMN visibility INTEGER NOT NULL DEFAULT 1;
UPDATE status_updates SET visibility = 2
WHERE json_extract(doc, '$.visibility') = 'VISIBILITY_INTERNAL';

-- Notes corrected since they were added, as they now are. A note without a
-- row is as its NOTE_ADDED event says (a note added before notes had a
-- visibility is INTERNAL).
CREATE TABLE notes (
    sequence    INTEGER PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    visibility  INTEGER NOT NULL,
    doc         TEXT NOT NULL
) STRICT;

-- A published postmortem keeps the text it was published with; postmortems
-- published before this were published as they now are.
UPDATE postmortems
SET doc = json_set(doc, '$.published', json_object(
    'body', json_extract(doc, '$.body'),
    'sections', json(json_extract(doc, '$.sections')),
    'publish_time', json_extract(doc, '$.publish_time')))
WHERE json_extract(doc, '$.publish_time') IS NOT NULL;
