//! Parsing and validating proto input into domain values. Every bad field is
//! collected, so one INVALID_ARGUMENT names them all.

use std::collections::BTreeMap;

use chrono::Utc;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::domain::incident::{ImpactWindow, RoleAssignment};
use crate::domain::limits::*;
use crate::domain::{ComponentId, ComponentImpact, ImpactLevel, Time};
use crate::error::{Error, FieldViolation, Result};
use crate::proto as pb;
use crate::service::Caller;
use crate::store::request_ids::RequestKey;

/// Collects the violations of one request.
#[derive(Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a bad field.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Keeps the value of a check, recording its failure.
    pub fn check<T>(&mut self, field: &str, r: std::result::Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e);
                None
            }
        }
    }

    /// INVALID_ARGUMENT naming this field and every one recorded before, for a
    /// request too broken to validate further.
    pub fn fail(mut self, field: &str, description: &str) -> Error {
        self.add(field, description);
        Error::InvalidArgument(self.0)
    }

    /// The parsed request, or INVALID_ARGUMENT naming every bad field. A parse
    /// that gives nothing has always recorded why.
    pub fn into_result<T>(self, parsed: Option<T>) -> Result<T> {
        self.finish()?;
        parsed.ok_or_else(|| Error::Internal("a request failed to parse without a reason".into()))
    }

    /// INVALID_ARGUMENT naming every bad field, or Ok.
    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(self.0))
        }
    }
}

/// A required title or name: 1 to 200 characters, no control characters.
pub fn title(s: &str) -> std::result::Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("must not be empty".into());
    }
    if t.chars().count() > TITLE_MAX_CHARS {
        return Err(format!("must be at most {TITLE_MAX_CHARS} characters"));
    }
    if t.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(t.to_owned())
}

/// Free text up to `max` bytes; `required` refuses empty text.
pub fn text(s: &str, max: usize, required: bool) -> std::result::Result<String, String> {
    if required && s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > max {
        return Err(format!("must be at most {} KiB", max / 1024));
    }
    Ok(s.to_owned())
}

/// A short single-line value (role, assignee, label value): up to 256 characters.
pub fn short(s: &str, required: bool) -> std::result::Result<String, String> {
    if required && s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if s.chars().count() > SHORT_TEXT_MAX_CHARS {
        return Err(format!("must be at most {SHORT_TEXT_MAX_CHARS} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(s.trim().to_owned())
}

/// A proto enum value that must be known; `0` (unspecified) yields `None`.
pub fn optional_enum<T>(
    code: i32,
    from_code: fn(i32) -> Option<T>,
) -> std::result::Result<Option<T>, String> {
    if code == 0 {
        return Ok(None);
    }
    from_code(code)
        .map(Some)
        .ok_or_else(|| format!("unknown enum value {code}"))
}

/// A proto enum value that must be set and known.
pub fn required_enum<T>(
    code: i32,
    from_code: fn(i32) -> Option<T>,
) -> std::result::Result<T, String> {
    optional_enum(code, from_code)?.ok_or_else(|| "is required".to_owned())
}

/// A UUID.
pub fn uuid<T: std::str::FromStr>(s: &str) -> std::result::Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{} is not a valid UUID", crate::error::quote(s)))
}

/// An optional UUID: empty means none.
pub fn optional_uuid<T: std::str::FromStr>(s: &str) -> std::result::Result<Option<T>, String> {
    if s.is_empty() {
        Ok(None)
    } else {
        uuid(s).map(Some)
    }
}

/// A timestamp within the range a Timestamp may hold.
pub fn time(ts: &prost_types::Timestamp) -> std::result::Result<Time, String> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err("nanos must be within 0..1e9".into());
    }
    let t = chrono::DateTime::from_timestamp(ts.seconds, ts.nanos as u32)
        .ok_or_else(|| "is out of range".to_owned())?;
    // Stored as i64 nanoseconds: 1677-09-21 .. 2262-04-11.
    t.timestamp_nanos_opt()
        .ok_or_else(|| "must be between 1678 and 2262".to_owned())?;
    Ok(t)
}

/// An optional timestamp.
pub fn optional_time(
    ts: &Option<prost_types::Timestamp>,
) -> std::result::Result<Option<Time>, String> {
    ts.as_ref().map(time).transpose()
}

/// A time in the past (or now): when something happened in the world.
pub fn past_time(ts: &Option<prost_types::Timestamp>) -> std::result::Result<Option<Time>, String> {
    let t = optional_time(ts)?;
    if let Some(t) = t
        && t > Utc::now() + CLOCK_SKEW
    {
        return Err("must not be in the future".into());
    }
    Ok(t)
}

/// A duration ≥ 0.
pub fn duration(d: &prost_types::Duration) -> std::result::Result<chrono::TimeDelta, String> {
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err("must be a non-negative duration".into());
    }
    chrono::TimeDelta::new(d.seconds, d.nanos as u32).ok_or_else(|| "is out of range".to_owned())
}

/// Labels: at most 64; keys 1 to 63 characters of letters, digits, `_.-/`.
pub fn labels(
    v: &mut Violations,
    field: &str,
    labels: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    if labels.len() > LABELS_MAX {
        v.add(field, format!("at most {LABELS_MAX} labels"));
    }
    let mut out = BTreeMap::new();
    for (k, val) in labels {
        if let Err(e) = label_key(k) {
            // The key is the client's and may be anything: quote a prefix.
            let k = crate::error::clip(k, crate::error::QUOTE_MAX_CHARS);
            v.add(format!("{field}[{k}]"), e);
            continue;
        }
        if let Some(val) = v.check(&format!("{field}[{k}]"), short(val, false)) {
            out.insert(k.clone(), val);
        }
    }
    out
}

/// A label filter of a List: "key" (any value) or "key=value"; empty is none.
pub fn label_filter(v: &mut Violations, label: &str) -> Option<(String, Option<String>)> {
    if label.is_empty() {
        return None;
    }
    let (k, val) = match label.split_once('=') {
        Some((k, val)) => (k.trim(), Some(val.trim().to_owned())),
        None => (label.trim(), None),
    };
    v.check(
        "label",
        label_key(k).map_err(|e| format!("{e} (use key or key=value)")),
    );
    Some((k.to_owned(), val))
}

/// The paths an update names (AIP-134): its mask, or with an empty mask every
/// field the request sets (`set` lists each field with whether it is set).
pub fn mask_paths(mask: &Option<prost_types::FieldMask>, set: &[(&str, bool)]) -> Vec<String> {
    match mask {
        Some(m) if !m.paths.is_empty() => m.paths.clone(),
        _ => set
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| (*name).to_owned())
            .collect(),
    }
}

/// An etag to check: empty means "no check".
pub fn etag(etag: &str) -> Option<String> {
    (!etag.is_empty()).then(|| etag.to_owned())
}

/// A label key.
pub fn label_key(k: &str) -> std::result::Result<(), String> {
    if k.is_empty() || k.chars().count() > LABEL_KEY_MAX_CHARS {
        return Err(format!(
            "label key must be 1 to {LABEL_KEY_MAX_CHARS} characters"
        ));
    }
    if !k
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
    {
        return Err("label key may hold only letters, digits and _ . - /".into());
    }
    Ok(())
}

/// Component impacts; the components they name are returned for an existence check.
pub fn component_impacts(
    v: &mut Violations,
    field: &str,
    list: &[pb::ComponentImpact],
    refs: &mut Vec<(String, ComponentId)>,
) -> Vec<ComponentImpact> {
    if list.len() > LIST_MAX {
        v.add(field, format!("at most {LIST_MAX} entries"));
    }
    let mut out: Vec<ComponentImpact> = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let id = v.check(
            &format!("{f}.component_id"),
            uuid::<ComponentId>(&c.component_id),
        );
        let impact = v.check(
            &format!("{f}.impact"),
            required_enum(c.impact, ImpactLevel::from_code),
        );
        if let (Some(component_id), Some(impact)) = (id, impact) {
            if out.iter().any(|o| o.component_id == component_id) {
                v.add(format!("{f}.component_id"), "component listed twice");
                continue;
            }
            refs.push((format!("{f}.component_id"), component_id));
            out.push(ComponentImpact {
                component_id,
                impact,
            });
        }
    }
    out
}

/// Impact windows.
pub fn impact_windows(
    v: &mut Violations,
    field: &str,
    list: &[pb::ImpactWindow],
    refs: &mut Vec<(String, ComponentId)>,
) -> Vec<ImpactWindow> {
    if list.len() > LIST_MAX {
        v.add(field, format!("at most {LIST_MAX} entries"));
    }
    let mut out = Vec::new();
    for (i, w) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let start = match &w.start_time {
            None => {
                v.add(format!("{f}.start_time"), "is required");
                None
            }
            Some(t) => v.check(&format!("{f}.start_time"), time(t)),
        };
        let end = v
            .check(&format!("{f}.end_time"), optional_time(&w.end_time))
            .flatten();
        let impact = v.check(
            &format!("{f}.impact"),
            required_enum(w.impact, ImpactLevel::from_code),
        );
        let dur = w
            .duration
            .as_ref()
            .and_then(|d| v.check(&format!("{f}.duration"), duration(d)));
        let description = v.check(
            &format!("{f}.description"),
            text(&w.description, TEXT_MAX_BYTES, false),
        );
        let mut ids = Vec::new();
        for (j, id) in w.component_ids.iter().enumerate() {
            let cf = format!("{f}.component_ids[{j}]");
            if let Some(id) = v.check(&cf, uuid::<ComponentId>(id)) {
                refs.push((cf, id));
                ids.push(id);
            }
        }
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            v.add(format!("{f}.end_time"), "must not be before start_time");
        }
        if let (Some(s), Some(e), Some(d)) = (start, end, dur)
            && d > e - s
        {
            v.add(
                format!("{f}.duration"),
                "must fit between start_time and end_time",
            );
        }
        if let (Some(start_time), Some(impact), Some(description)) = (start, impact, description) {
            out.push(ImpactWindow {
                start_time,
                end_time: end,
                impact,
                component_ids: ids,
                description,
                duration: dur,
            });
        }
    }
    out
}

/// Role assignments.
pub fn roles(v: &mut Violations, field: &str, list: &[pb::RoleAssignment]) -> Vec<RoleAssignment> {
    if list.len() > LIST_MAX {
        v.add(field, format!("at most {LIST_MAX} entries"));
    }
    list.iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let role = v.check(&format!("{field}[{i}].role"), short(&r.role, true));
            let assignee = v.check(&format!("{field}[{i}].assignee"), short(&r.assignee, true));
            Some(RoleAssignment {
                role: role?,
                assignee: assignee?,
            })
        })
        .collect()
}

/// Page size: negative is refused, 0 is the default, above the cap is the cap.
pub fn page_size(v: &mut Violations, size: i32) -> usize {
    if size < 0 {
        v.add("page_size", "must not be negative");
        return PAGE_SIZE_DEFAULT;
    }
    match size as usize {
        0 => PAGE_SIZE_DEFAULT,
        n => n.min(PAGE_SIZE_MAX),
    }
}

/// The identity of the caller: the token's name, or in open mode (no tokens
/// file) the `x-actor` metadata value.
pub fn caller<T>(req: &tonic::Request<T>) -> Caller {
    if let Some(identity) = req.extensions().get::<crate::auth::Identity>() {
        return Caller {
            actor: identity.name.clone(),
            admin: identity.role == crate::auth::Role::Admin,
        };
    }
    let actor = req
        .metadata()
        .get("x-actor")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= SHORT_TEXT_MAX_CHARS)
        .unwrap_or("anonymous");
    Caller {
        actor: actor.to_owned(),
        admin: true,
    }
}

/// A mutating request: it carries a client-chosen request_id (AIP-155).
pub trait Mutating: Message + Clone {
    /// The RPC's name, which scopes its request ids.
    const METHOD: &'static str;
    /// The request's request_id field.
    fn request_id_mut(&mut self) -> &mut String;
}

macro_rules! mutating {
    ($($ty:ident => $method:literal),+ $(,)?) => {
        $(impl Mutating for pb::$ty {
            const METHOD: &'static str = $method;
            fn request_id_mut(&mut self) -> &mut String {
                &mut self.request_id
            }
        })+
    };
}

mutating!(
    CreateIncidentRequest => "CreateIncident",
    UpdateIncidentRequest => "UpdateIncident",
    DeleteIncidentRequest => "DeleteIncident",
    UndeleteIncidentRequest => "UndeleteIncident",
    PostStatusUpdateRequest => "PostStatusUpdate",
    UpdatePostmortemRequest => "UpdatePostmortem",
    PublishPostmortemRequest => "PublishPostmortem",
    CreateComponentRequest => "CreateComponent",
    UpdateComponentRequest => "UpdateComponent",
    DeleteComponentRequest => "DeleteComponent",
    CreateActionItemRequest => "CreateActionItem",
    UpdateActionItemRequest => "UpdateActionItem",
    DeleteActionItemRequest => "DeleteActionItem",
    AddNoteRequest => "AddNote",
    EditStatusUpdateRequest => "EditStatusUpdate",
    EditNoteRequest => "EditNote",
);

/// The correction a request asks for: a new text (`text`, empty keeps it)
/// and a new visibility (unspecified keeps it), at least one of them.
pub fn correction(
    v: &mut Violations,
    text_field: &str,
    text: &str,
    visibility: i32,
) -> crate::domain::correction::Correction {
    if text.is_empty() && visibility == 0 {
        v.add(text_field, "give a corrected text, a visibility, or both");
    }
    let text = if text.is_empty() {
        None
    } else {
        v.check(text_field, self::text(text, TEXT_MAX_BYTES, true))
    };
    let visibility = v
        .check(
            "visibility",
            optional_enum(visibility, crate::domain::Visibility::from_code),
        )
        .flatten();
    crate::domain::correction::Correction { text, visibility }
}

/// The AIP-155 key of a mutating request: none without a request_id. The
/// fingerprint hashes the request with its request_id cleared, so a retry
/// matches and any other change does not.
pub fn request_key<M: Mutating>(
    v: &mut Violations,
    caller: &Caller,
    msg: &M,
) -> Option<RequestKey> {
    let mut m = msg.clone();
    let request_id = std::mem::take(m.request_id_mut());
    if request_id.is_empty() {
        return None;
    }
    if ::uuid::Uuid::parse_str(&request_id).is_err() {
        v.add("request_id", "must be a UUID");
        return None;
    }
    Some(RequestKey {
        caller: caller.actor.clone(),
        method: M::METHOD,
        request_id: request_id.to_ascii_lowercase(),
        fingerprint: Sha256::digest(m.encode_to_vec()).to_vec(),
    })
}

/// What every mutating handler starts from: the caller, the request, its
/// AIP-155 key, and the violations found so far (a malformed request_id).
pub struct Mutation<M> {
    pub caller: Caller,
    pub request: M,
    pub key: Option<RequestKey>,
    pub violations: Violations,
}

/// Unpacks a mutating request.
pub fn mutation<M: Mutating>(req: tonic::Request<M>) -> Mutation<M> {
    let caller = caller(&req);
    let request = req.into_inner();
    let mut violations = Violations::new();
    let key = request_key(&mut violations, &caller, &request);
    Mutation {
        caller,
        request,
        key,
        violations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn title_limits() {
        assert!(title("").is_err());
        assert!(title("   ").is_err());
        assert!(title(&"x".repeat(200)).is_ok());
        assert!(
            title(&"é".repeat(200)).is_ok(),
            "the limit counts characters, not bytes"
        );
        assert!(title(&"x".repeat(201)).is_err());
        assert!(title("a\u{7}b").is_err());
        assert_eq!(title("  Outage ").unwrap(), "Outage");
    }

    #[test]
    fn times_reject_bad_nanos_and_the_future() {
        assert!(
            time(&prost_types::Timestamp {
                seconds: 0,
                nanos: -1
            })
            .is_err()
        );
        assert!(
            time(&prost_types::Timestamp {
                seconds: 0,
                nanos: 1_000_000_000
            })
            .is_err()
        );
        let future = Utc::now() + chrono::TimeDelta::hours(1);
        let ts = prost_types::Timestamp {
            seconds: future.timestamp(),
            nanos: 0,
        };
        assert!(past_time(&Some(ts)).is_err());
        assert_eq!(past_time(&None), Ok(None));
    }

    proptest! {
        #[test]
        fn title_accepts_exactly_the_valid_ones(s in "\\PC{0,250}") {
            let t = s.trim();
            let valid = !t.is_empty() && t.chars().count() <= 200;
            prop_assert_eq!(title(&s).is_ok(), valid);
        }

        #[test]
        fn enums_accept_known_codes_only(code in -5i32..20) {
            let r = optional_enum(code, crate::domain::IncidentStatus::from_code);
            prop_assert_eq!(r.is_ok(), (0..=8).contains(&code));
        }

        #[test]
        fn page_size_is_clamped(size in any::<i32>()) {
            let mut v = Violations::new();
            let n = page_size(&mut v, size);
            prop_assert_eq!(v.finish().is_ok(), size >= 0);
            prop_assert!((1..=PAGE_SIZE_MAX).contains(&n));
        }

        #[test]
        fn any_timestamp_parses_or_errors_without_panic(seconds in any::<i64>(), nanos in any::<i32>()) {
            let _ = time(&prost_types::Timestamp { seconds, nanos });
        }
    }
}
