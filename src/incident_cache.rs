//! Recently read incidents in their wire form, so GetIncident and list pages
//! answer from memory.
//!
//! What a reader gets: every write this server acknowledged before the call
//! began. An entry is forgotten when an event about its incident commits,
//! before the write is acknowledged and before subscribers hear of it (the
//! hub calls [`IncidentCache::forget`] as it publishes), and a read that raced
//! such a commit does not put what it read into the cache. Every change to an
//! incident, including its action-item counts and its postmortem, is an event
//! about it, so nothing changes an incident behind the cache's back. From
//! before a group's COMMIT until it is published, nothing it may change is
//! served or kept ([`IncidentCache::committing`]): it may be in the database
//! and not yet forgotten here.
//!
//! On SQLite this holds because one process writes the database and
//! publishes every event it commits. On PostgreSQL each replica's tail feeds
//! its hub with the events the others commit, so a reader sees another
//! replica's write once its own replica has read it from the log (within a
//! second even if the notification of that commit is lost).
//!
//! A list page is chosen by one read of the database (which incidents, in
//! which order) and its incidents taken from here where that shows each as
//! that read saw it: an entry is used only if its read began before anything
//! about the incident published since the page's mark
//! ([`IncidentCache::get_as_of`]), and an incident read from the database
//! after the page is used only if nothing about it committed in between
//! ([`IncidentCache::unchanged_since`]); otherwise the page is read again as
//! one whole. On PostgreSQL, another replica's write that the page's read
//! counted may not be published here yet: its incident can then show as
//! before it.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use quick_cache::sync::Cache;

use crate::domain::{EventKeys, EventKind, IncidentId};

/// Independent invalidation counters: a read races only the commits that fall
/// in its shard, so fills still succeed under a steady stream of writes.
const SHARDS: usize = 64;

/// Recently read incidents; see the module docs.
pub struct IncidentCache {
    entries: Cache<IncidentId, Entry>,
    /// Reference numbers never change, so this needs no invalidation.
    numbers: Cache<i64, IncidentId>,
    epochs: [AtomicU64; SHARDS],
    /// Events published so far: orders an entry's read against a list
    /// page's.
    published: AtomicU64,
    /// Groups between their COMMIT's start and their publication, by shard
    /// of the incidents they change, and those changing every incident.
    committing: [AtomicU64; SHARDS],
    committing_all: AtomicU64,
    enabled: bool,
}

#[derive(Clone)]
struct Entry {
    body: Bytes,
    /// `published` when the read that found it began.
    since: u64,
}

/// Taken before a database read, so the fill that follows can tell whether
/// a commit about the incident came in between.
#[derive(Debug)]
pub struct Ticket {
    id: IncidentId,
    epoch: u64,
    published: u64,
}

/// Taken before a list page is read: what has been published so far, to
/// tell which entries and later reads still show the page's incidents as
/// its read saw them.
#[derive(Debug)]
pub struct Mark {
    epochs: [u64; SHARDS],
    published: u64,
}

impl Mark {
    /// A ticket for filling the cache with a read made after this mark.
    pub fn ticket(&self, id: IncidentId) -> Ticket {
        Ticket {
            id,
            epoch: self.epochs[shard_of(id)],
            published: self.published,
        }
    }
}

fn shard_of(id: IncidentId) -> usize {
    (id.0.as_u128() % SHARDS as u128) as usize
}

impl IncidentCache {
    /// A cache of up to `capacity` incidents (0: caching off).
    pub fn new(capacity: usize) -> Self {
        IncidentCache {
            entries: Cache::new(capacity.max(1)),
            numbers: Cache::new(capacity.max(1)),
            epochs: std::array::from_fn(|_| AtomicU64::new(0)),
            published: AtomicU64::new(0),
            committing: std::array::from_fn(|_| AtomicU64::new(0)),
            committing_all: AtomicU64::new(0),
            enabled: capacity > 0,
        }
    }

    /// Whether no commit that may change the incident is under way (one may
    /// be in the database and not yet forgotten here). Checked before an
    /// entry is read, and before one is kept: entries hold only published
    /// states, or states from before a commit that started after the check.
    fn quiet(&self, id: IncidentId) -> bool {
        self.committing_all.load(Ordering::SeqCst) == 0
            && self.committing[shard_of(id)].load(Ordering::SeqCst) == 0
    }

    /// Call before a group's COMMIT, with the incident and kind of each
    /// event it commits; the group counts as under way until the guard is
    /// dropped, after the hub published the events (and so forgot what they
    /// change).
    pub fn committing(
        &self,
        events: impl IntoIterator<Item = (Option<IncidentId>, EventKind)>,
    ) -> Committing<'_> {
        let mut shards = Vec::new();
        let mut all = false;
        for (incident, kind) in events {
            shards.extend(incident.map(shard_of));
            all |= changes_every_incident(kind);
        }
        shards.sort_unstable();
        shards.dedup();
        for &k in &shards {
            self.committing[k].fetch_add(1, Ordering::SeqCst);
        }
        if all {
            self.committing_all.fetch_add(1, Ordering::SeqCst);
        }
        Committing {
            cache: self,
            shards,
            all,
        }
    }

    /// Whether the cache keeps anything (its capacity is not 0).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn shard(&self, id: IncidentId) -> &AtomicU64 {
        &self.epochs[shard_of(id)]
    }

    /// The incident's wire form, if cached.
    pub fn get(&self, id: IncidentId) -> Option<Bytes> {
        let hit = self.served(id).map(|e| e.body);
        count(usize::from(hit.is_some()), usize::from(hit.is_none()));
        hit
    }

    /// The entry, unless a commit that may change it is under way.
    fn served(&self, id: IncidentId) -> Option<Entry> {
        if self.quiet(id) {
            self.entries.get(&id)
        } else {
            None
        }
    }

    /// The incident's wire form as a list page read after `mark` saw it, if
    /// cached (see the module docs). Not counted: see [`IncidentCache::count`].
    pub fn get_as_of(&self, id: IncidentId, mark: &Mark) -> Option<Bytes> {
        // An entry read before the mark, or after it with nothing published
        // in between, holds what the page's read saw: a commit about the
        // incident since its read would have removed it.
        self.served(id)
            .filter(|e| e.since <= mark.published)
            .map(|e| e.body)
    }

    /// Counts a page's lookups ([`IncidentCache::get_as_of`] does not).
    pub fn count(&self, hits: usize, misses: usize) {
        count(hits, misses);
    }

    /// Whether no commit about the incident was published since `mark`:
    /// a read of it after the mark saw what a read at the mark did.
    pub fn unchanged_since(&self, mark: &Mark, id: IncidentId) -> bool {
        // A commit since the mark is either under way or published (which
        // moved the epoch).
        self.quiet(id) && self.shard(id).load(Ordering::SeqCst) == mark.epochs[shard_of(id)]
    }

    /// Call before reading a list page.
    pub fn mark(&self) -> Mark {
        // The epochs first, as in `ticket`: a mark also fills the cache.
        let epochs = std::array::from_fn(|k| self.epochs[k].load(Ordering::SeqCst));
        Mark {
            epochs,
            published: self.published.load(Ordering::SeqCst),
        }
    }

    /// The id of INC-`number`, if known.
    pub fn id_of(&self, number: i64) -> Option<IncidentId> {
        self.numbers.get(&number)
    }

    /// Remembers which incident INC-`number` is.
    pub fn learn_number(&self, number: i64, id: IncidentId) {
        if self.enabled {
            self.numbers.insert(number, id);
        }
    }

    /// Call before reading the incident from the database.
    pub fn ticket(&self, id: IncidentId) -> Ticket {
        // The epoch first. A ticket that sees a commit's epoch bump also
        // sees its earlier `published` bump, so the entry is stamped as newer
        // than it; one that misses the bump fails to fill (or its entry is
        // removed).
        let epoch = self.shard(id).load(Ordering::SeqCst);
        Ticket {
            id,
            epoch,
            published: self.published.load(Ordering::SeqCst),
        }
    }

    /// Keeps what a read found, unless a commit about its shard came in since
    /// the ticket was taken (the read may predate it).
    pub fn fill(&self, ticket: Ticket, body: Bytes) {
        if !self.enabled {
            return;
        }
        // Quiet first: once a group under way is done, the epoch it moved
        // is seen below. A read during one may have seen its commit.
        let shard = self.shard(ticket.id);
        if !self.quiet(ticket.id) || shard.load(Ordering::SeqCst) != ticket.epoch {
            return;
        }
        self.entries.insert(
            ticket.id,
            Entry {
                body,
                since: ticket.published,
            },
        );
        // A commit that bumped the epoch after the check above may have
        // removed the entry before it was inserted: take it out again.
        if shard.load(Ordering::SeqCst) != ticket.epoch {
            self.entries.remove(&ticket.id);
        }
    }

    /// Forgets what a committed event changed. Called before the write is
    /// acknowledged.
    pub fn forget(&self, e: &EventKeys) {
        // Before the epoch bumps (see `ticket`).
        self.published.fetch_add(1, Ordering::SeqCst);
        if let Some(id) = e.incident_id {
            // Bump first: a fill that checks after this sees the change.
            self.shard(id).fetch_add(1, Ordering::SeqCst);
            self.entries.remove(&id);
        }
        if changes_every_incident(e.kind) {
            for shard in &self.epochs {
                shard.fetch_add(1, Ordering::SeqCst);
            }
            self.entries.clear();
        }
    }
}

/// Incidents show the components they affect by name: a change to any
/// component may change how any incident reads (component changes are rare).
fn changes_every_incident(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::ComponentCreated | EventKind::ComponentUpdated | EventKind::ComponentDeleted
    )
}

/// A group's commit under way; see [`IncidentCache::committing`].
pub struct Committing<'a> {
    cache: &'a IncidentCache,
    shards: Vec<usize>,
    all: bool,
}

impl Drop for Committing<'_> {
    fn drop(&mut self) {
        for &k in &self.shards {
            self.cache.committing[k].fetch_sub(1, Ordering::SeqCst);
        }
        if self.all {
            self.cache.committing_all.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Counts lookups' outcomes.
fn count(hits: usize, misses: usize) {
    for (n, result) in [(hits, "hit"), (misses, "miss")] {
        if n > 0 {
            metrics::counter!(crate::metrics::INCIDENT_CACHE, "result" => result)
                .increment(n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(id: IncidentId) -> EventKeys {
        EventKeys {
            sequence: 1,
            kind: EventKind::NoteAdded,
            incident_id: Some(id),
            severity: None,
            component_ids: vec![],
        }
    }

    fn id(n: u128) -> IncidentId {
        IncidentId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_fill_is_served_until_its_incident_changes() {
        let c = IncidentCache::new(10);
        let t = c.ticket(id(1));
        c.fill(t, Bytes::from_static(b"v1"));
        c.learn_number(1, id(1));
        assert_eq!(c.get(id(1)), Some(Bytes::from_static(b"v1")));
        assert_eq!(c.id_of(1), Some(id(1)));
        c.forget(&keys(id(1)));
        assert_eq!(c.get(id(1)), None);
    }

    #[test]
    fn a_read_that_raced_a_commit_is_not_kept() {
        let c = IncidentCache::new(10);
        let t = c.ticket(id(1));
        // The read saw the incident before this commit.
        c.forget(&keys(id(1)));
        c.fill(t, Bytes::from_static(b"stale"));
        assert_eq!(c.get(id(1)), None);
        // The next read, after the commit, is kept.
        let t = c.ticket(id(1));
        c.fill(t, Bytes::from_static(b"fresh"));
        assert_eq!(c.get(id(1)), Some(Bytes::from_static(b"fresh")));
    }

    #[test]
    fn a_component_change_forgets_every_incident() {
        let c = IncidentCache::new(10);
        for n in 1..=3 {
            let t = c.ticket(id(n));
            c.fill(t, Bytes::from_static(b"v"));
        }
        let t = c.ticket(id(4));
        c.forget(&EventKeys {
            kind: EventKind::ComponentUpdated,
            incident_id: None,
            ..keys(id(0))
        });
        c.fill(t, Bytes::from_static(b"stale"));
        for n in 1..=4 {
            assert_eq!(c.get(id(n)), None);
        }
    }

    #[test]
    fn a_page_takes_only_entries_read_before_anything_published_since_its_mark() {
        let c = IncidentCache::new(10);
        let t = c.ticket(id(1));
        c.fill(t, Bytes::from_static(b"v1"));
        let mark = c.mark();
        assert_eq!(c.get_as_of(id(1), &mark), Some(Bytes::from_static(b"v1")));
        assert!(c.unchanged_since(&mark, id(1)));
        // After the page's read: a commit, then a reader refills the entry
        // with what the page's read did not see.
        c.forget(&keys(id(1)));
        assert!(!c.unchanged_since(&mark, id(1)));
        let t = c.ticket(id(1));
        c.fill(t, Bytes::from_static(b"v2"));
        assert_eq!(c.get(id(1)), Some(Bytes::from_static(b"v2")));
        assert_eq!(c.get_as_of(id(1), &mark), None);
        // A commit about another incident moves neither.
        let mark = c.mark();
        c.forget(&keys(id(2)));
        assert!(c.unchanged_since(&mark, id(1)));
        assert_eq!(c.get_as_of(id(1), &mark), Some(Bytes::from_static(b"v2")));
        // Filled by a read that began after that commit: for all the cache
        // can tell, something about it was published after the mark.
        c.fill(c.ticket(id(3)), Bytes::from_static(b"w"));
        assert_eq!(c.get_as_of(id(3), &mark), None, "stamped after the mark");
        assert_eq!(
            c.get_as_of(id(3), &c.mark()),
            Some(Bytes::from_static(b"w"))
        );
        // Filled on the mark's ticket (a page's own read of what the cache
        // lacked): stamped as of the mark.
        c.fill(mark.ticket(id(4)), Bytes::from_static(b"x"));
        assert_eq!(c.get_as_of(id(4), &mark), Some(Bytes::from_static(b"x")));
    }

    #[test]
    fn nothing_a_commit_under_way_changes_is_served() {
        let c = IncidentCache::new(10);
        for n in 1..=2 {
            let t = c.ticket(id(n));
            c.fill(t, Bytes::from_static(b"v"));
        }
        let mark = c.mark();
        let committing = c.committing([(Some(id(1)), EventKind::NoteAdded)]);
        assert_eq!(c.get(id(1)), None);
        assert_eq!(c.get_as_of(id(1), &mark), None);
        assert!(!c.unchanged_since(&mark, id(1)));
        // Another shard is served.
        assert_eq!(c.get(id(2)), Some(Bytes::from_static(b"v")));
        drop(committing);
        assert_eq!(c.get(id(1)), Some(Bytes::from_static(b"v")));
        assert!(c.unchanged_since(&mark, id(1)));
        // What a read during a commit under way found is not kept, even if
        // the group fails and publishes nothing.
        let committing = c.committing([(Some(id(3)), EventKind::NoteAdded)]);
        c.fill(c.ticket(id(3)), Bytes::from_static(b"maybe committed"));
        drop(committing);
        assert_eq!(c.get(id(3)), None);
        // A component change is under way for every incident.
        let committing = c.committing([(None, EventKind::ComponentUpdated)]);
        assert_eq!(c.get(id(2)), None);
        drop(committing);
        assert_eq!(c.get(id(2)), Some(Bytes::from_static(b"v")));
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let c = IncidentCache::new(0);
        let t = c.ticket(id(1));
        c.fill(t, Bytes::from_static(b"v"));
        assert_eq!(c.get(id(1)), None);
    }
}
