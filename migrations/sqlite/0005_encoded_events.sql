-- The log keeps each event in its wire form (`body`: an encoded
-- incident.v1.SubscribeTimelineResponse carrying the TimelineEvent, which is
-- also one element of ListTimelineEventsResponse.events), sent to readers as
-- it is, beside the keys that
-- subscription filters read: the incident's severity and the components it
-- affected as of the event (16-byte ids, concatenated), and the component a
-- component event is about.
--
-- Events written before this migration carry their old columns as one JSON
-- object in `legacy` until the server encodes them, once, when it opens the
-- database; after that every row has a body and no legacy.
CREATE TABLE events_encoded (
    sequence      INTEGER PRIMARY KEY,
    kind          INTEGER NOT NULL,
    incident_id   TEXT,
    severity      INTEGER,
    component_ids BLOB NOT NULL DEFAULT x'',
    body          BLOB,
    legacy        TEXT,
    CHECK ((body IS NULL) <> (legacy IS NULL))
) STRICT;

INSERT INTO events_encoded (sequence, kind, incident_id, legacy)
SELECT sequence, kind, incident_id,
       json_object('event_time', event_time, 'occur_time', occur_time,
                   'actor', actor, 'snapshot', json(snapshot),
                   'payload', json(payload))
FROM events;

DROP TABLE events;
ALTER TABLE events_encoded RENAME TO events;
CREATE INDEX events_by_incident ON events (incident_id, sequence);
CREATE INDEX events_to_encode ON events (sequence) WHERE body IS NULL;
