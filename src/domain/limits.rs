//! The documented limits of the API, enforced at the edge.

/// Maximum characters of a title or a name.
pub const TITLE_MAX_CHARS: usize = 200;
/// Maximum bytes of a message, note, summary or description.
pub const TEXT_MAX_BYTES: usize = 16 * 1024;
/// Maximum bytes of a postmortem (body plus sections).
pub const POSTMORTEM_MAX_BYTES: usize = 256 * 1024;
/// Maximum labels on one resource.
pub const LABELS_MAX: usize = 64;
/// Maximum characters of a label key.
pub const LABEL_KEY_MAX_CHARS: usize = 63;
/// Maximum characters of a label value, a role name or an assignee.
pub const SHORT_TEXT_MAX_CHARS: usize = 256;
/// Maximum role assignments, impact windows or component impacts on an incident.
pub const LIST_MAX: usize = 256;
/// Maximum entries of one list filter (incident_ids, kinds, statuses, severities).
pub const FILTER_LIST_MAX: usize = 100;
/// Maximum size of one request message.
pub const REQUEST_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Default page size of every List.
pub const PAGE_SIZE_DEFAULT: usize = 50;
/// Largest page size of every List; larger requests get this many.
pub const PAGE_SIZE_MAX: usize = 1000;
/// A page also stops once its encoded items pass this many bytes.
pub const PAGE_MAX_BYTES: usize = 4 * 1024 * 1024;
/// How far in the future an `occur_time` may lie, to forgive clock skew.
pub const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(2);
