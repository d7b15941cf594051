//! Every request field that names an incident accepts its id or its
//! reference ("INC-42", any case). References are resolved to ids here,
//! before validation, so the rest of the edge sees ids only; errors about
//! such an incident echo what the caller sent, never the id it resolved to.

use crate::domain::{Audience, IncidentId};
use crate::error::{Error, Result};
use crate::proto as pb;
use crate::store::{Store, incidents};

/// The incident-naming fields of a request, as (path, value).
pub(crate) trait NamesIncidents {
    fn incident_fields(&mut self) -> Vec<&mut String>;
}

/// The references a request named, and the ids they resolved to.
#[derive(Default)]
pub(crate) struct Sent(Vec<(IncidentId, String)>);

impl Sent {
    /// `e`, naming an incident as the caller named it.
    pub fn echo(&self, e: Error) -> Error {
        match e {
            Error::NotFound {
                resource: "incident",
                id,
            } => Error::NotFound {
                resource: "incident",
                id: self
                    .0
                    .iter()
                    .find(|(resolved, _)| resolved.to_string() == id)
                    .map(|(_, sent)| sent.clone())
                    .unwrap_or(id),
            },
            other => other,
        }
    }
}

/// The incident number of a reference, "INC-42" (any case), if `s` is one.
pub(crate) fn reference_number(s: &str) -> Option<i64> {
    let t = s.trim();
    t.get(..4)
        .filter(|p| p.eq_ignore_ascii_case("INC-"))
        .and_then(|_| t[4..].parse::<i64>().ok())
        .filter(|n| *n > 0)
}

/// Replaces every reference among the request's incident fields with the id
/// it names; one that names no incident `audience` may see is NOT_FOUND,
/// echoing it. Fields holding anything else are left for validation.
pub(crate) async fn resolve<R: NamesIncidents>(
    store: &Store,
    request: &mut R,
    audience: Audience,
) -> Result<Sent> {
    let mut sent = Sent::default();
    let mut conn = None;
    for field in request.incident_fields() {
        let Some(number) = reference_number(field) else {
            continue;
        };
        let conn = match &mut conn {
            Some(c) => c,
            None => conn.insert(store.reader().await?),
        };
        let Some(id) = incidents::id_by_number(conn, number, audience).await? else {
            return Err(Error::NotFound {
                resource: "incident",
                id: field.trim().to_owned(),
            });
        };
        sent.0.push((id, field.trim().to_owned()));
        *field = id.to_string();
    }
    Ok(sent)
}

macro_rules! names_incidents {
    ($($request:ty => |$r:ident| $fields:expr;)*) => {
        $(impl NamesIncidents for $request {
            fn incident_fields(&mut self) -> Vec<&mut String> {
                let $r = self;
                $fields
            }
        })*
    };
}

names_incidents! {
    pb::UpdateIncidentRequest => |r| r.incident.iter_mut().map(|i| &mut i.id).collect();
    pb::DeleteIncidentRequest => |r| vec![&mut r.id];
    pb::UndeleteIncidentRequest => |r| vec![&mut r.id];
    pb::PostStatusUpdateRequest => |r| vec![&mut r.incident_id];
    pb::ListStatusUpdatesRequest => |r| vec![&mut r.incident_id];
    pb::GetPostmortemRequest => |r| vec![&mut r.incident_id];
    pb::UpdatePostmortemRequest => |r| r.postmortem.iter_mut().map(|p| &mut p.incident_id).collect();
    pb::PublishPostmortemRequest => |r| vec![&mut r.incident_id];
    pb::AddNoteRequest => |r| vec![&mut r.incident_id];
    pb::EditNoteRequest => |r| vec![&mut r.incident_id];
    pb::ListTimelineEventsRequest => |r| vec![&mut r.incident_id];
    pb::SubscribeTimelineRequest => |r| r.incident_ids.iter_mut().collect();
    pb::CreateActionItemRequest => |r| r.action_item.iter_mut().map(|a| &mut a.incident_id).collect();
    pb::ListActionItemsRequest => |r| vec![&mut r.incident_id];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_inc_and_a_positive_number_in_any_case() {
        assert_eq!(reference_number("INC-42"), Some(42));
        assert_eq!(reference_number("inc-7"), Some(7));
        assert_eq!(reference_number(" Inc-3 "), Some(3));
        for not in [
            "INC-0",
            "INC--1",
            "INC-",
            "INC-x",
            "42",
            "",
            "INCI-4",
            "0190c0de-0000-7000-8000-000000000000",
        ] {
            assert_eq!(reference_number(not), None, "{not}");
        }
    }
}
