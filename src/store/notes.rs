//! Notes as they now are. The log keeps each as it was added; a note gets a
//! row of its own when it is first corrected, until then it is read from
//! its NOTE_ADDED event.

use super::db::{self, Conn};

use crate::domain::{EventKind, IncidentId, Note, Visibility};
use crate::error::Result;
use crate::proto::timeline_event::Payload;

/// The note added by event `sequence` to incident `incident_id`, if there is one.
pub async fn load(conn: &mut Conn, incident_id: IncidentId, sequence: u64) -> Result<Option<Note>> {
    let doc: Option<String> =
        db::query_scalar("SELECT doc FROM notes WHERE sequence = $1 AND incident_id = $2")
            .bind(sequence as i64)
            .bind(incident_id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(doc) = doc {
        return Ok(Some(serde_json::from_str(&doc)?));
    }
    let body: Option<Vec<u8>> = db::query_scalar(
        "SELECT body FROM events WHERE sequence = $1 AND incident_id = $2 AND kind = $3",
    )
    .bind(sequence as i64)
    .bind(incident_id.to_string())
    .bind(EventKind::NoteAdded.code())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(body) = body else { return Ok(None) };
    let e = crate::wire::decode_event(&body)?;
    let Some(Payload::NoteAdded(added)) = e.payload else {
        return Ok(None);
    };
    Ok(Some(Note {
        sequence,
        incident_id,
        author: e.actor,
        text: added.text,
        // Notes added before notes had a visibility are internal.
        visibility: Visibility::from_code(added.visibility).unwrap_or(Visibility::Internal),
        create_time: e
            .event_time
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32))
            .unwrap_or_default(),
        edit_time: None,
    }))
}
