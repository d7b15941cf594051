//! Recently read incidents in their wire form, so GetIncident answers from
//! memory.
//!
//! What a reader gets: every write this server acknowledged before the call
//! began. An entry is forgotten when an event about its incident commits,
//! before the write is acknowledged and before subscribers hear of it (the
//! hub calls [`IncidentCache::forget`] as it publishes), and a read that raced
//! such a commit does not put what it read into the cache. Every change to an
//! incident, including its action-item counts and its postmortem, is an event
//! about it, so nothing changes an incident behind the cache's back.
//!
//! On SQLite this holds because one process writes the database and
//! publishes every event it commits. On PostgreSQL each replica's tail feeds
//! its hub with the events the others commit, so a reader sees another
//! replica's write once its own replica has read it from the log (within a
//! second even if the notification of that commit is lost).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use quick_cache::sync::Cache;

use crate::domain::{EventKeys, EventKind, IncidentId};

/// Independent invalidation counters: a read races only the commits that fall
/// in its shard, so fills still succeed under a steady stream of writes.
const SHARDS: usize = 64;

/// Recently read incidents; see the module docs.
pub struct IncidentCache {
    entries: Cache<IncidentId, Bytes>,
    /// Reference numbers never change, so this needs no invalidation.
    numbers: Cache<i64, IncidentId>,
    epochs: [AtomicU64; SHARDS],
    enabled: bool,
}

/// Taken before a database read, so the fill that follows can tell whether
/// a commit about the incident came in between.
#[derive(Debug)]
pub struct Ticket {
    id: IncidentId,
    epoch: u64,
}

impl IncidentCache {
    /// A cache of up to `capacity` incidents (0: caching off).
    pub fn new(capacity: usize) -> Self {
        IncidentCache {
            entries: Cache::new(capacity.max(1)),
            numbers: Cache::new(capacity.max(1)),
            epochs: std::array::from_fn(|_| AtomicU64::new(0)),
            enabled: capacity > 0,
        }
    }

    fn shard(&self, id: IncidentId) -> &AtomicU64 {
        &self.epochs[(id.0.as_u128() % SHARDS as u128) as usize]
    }

    /// The incident's wire form, if cached.
    pub fn get(&self, id: IncidentId) -> Option<Bytes> {
        let hit = self.entries.get(&id);
        metrics::counter!(
            crate::metrics::INCIDENT_CACHE,
            "result" => if hit.is_some() { "hit" } else { "miss" }
        )
        .increment(1);
        hit
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
        Ticket {
            id,
            epoch: self.shard(id).load(Ordering::Acquire),
        }
    }

    /// Keeps what a read found, unless a commit about its shard came in since
    /// the ticket was taken (the read may predate it).
    pub fn fill(&self, ticket: Ticket, body: Bytes) {
        if !self.enabled {
            return;
        }
        let shard = self.shard(ticket.id);
        if shard.load(Ordering::Acquire) != ticket.epoch {
            return;
        }
        self.entries.insert(ticket.id, body);
        // A commit that bumped the epoch after the check above may have
        // removed the entry before it was inserted: take it out again.
        if shard.load(Ordering::Acquire) != ticket.epoch {
            self.entries.remove(&ticket.id);
        }
    }

    /// Forgets what a committed event changed. Called before the write is
    /// acknowledged.
    pub fn forget(&self, e: &EventKeys) {
        if let Some(id) = e.incident_id {
            // Bump first: a fill that checks after this sees the change.
            self.shard(id).fetch_add(1, Ordering::AcqRel);
            self.entries.remove(&id);
        }
        if matches!(
            e.kind,
            EventKind::ComponentCreated | EventKind::ComponentUpdated | EventKind::ComponentDeleted
        ) {
            // Incidents show the components they affect: forget them all
            // (component changes are rare).
            for shard in &self.epochs {
                shard.fetch_add(1, Ordering::AcqRel);
            }
            self.entries.clear();
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
    fn capacity_zero_keeps_nothing() {
        let c = IncidentCache::new(0);
        let t = c.ticket(id(1));
        c.fill(t, Bytes::from_static(b"v"));
        assert_eq!(c.get(id(1)), None);
    }
}
