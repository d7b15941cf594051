//! The in-process fan-out of committed events to live subscribers.
//!
//! The writer publishes each committed group in sequence order. Subscribers
//! read a shared ring buffer (one copy of each event, in its wire form,
//! whatever the number of subscribers); one that falls behind the ring is told it lagged and goes back
//! to the database, so memory stays bounded and nothing is lost.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use crate::component_names::ComponentNames;
use bytes::Bytes;

use crate::domain::EncodedEvent;
use crate::incident_cache::IncidentCache;

/// A committed event as live subscribers get it: as stored, and as the
/// public sees it at commit (`None`: hidden from the public).
#[derive(Clone, Debug, PartialEq)]
pub struct LiveEvent {
    pub stored: EncodedEvent,
    pub public: Option<Bytes>,
}

/// Publishes committed events and the shutdown signal.
#[derive(Clone)]
pub struct Hub {
    events: broadcast::Sender<Arc<LiveEvent>>,
    shutdown: watch::Sender<bool>,
    incidents: Arc<IncidentCache>,
    components: Arc<ComponentNames>,
}

impl Hub {
    /// A hub whose ring holds `capacity` events, keeping up to
    /// `cached_incidents` incidents for readers, and `components` current.
    pub fn new(capacity: usize, cached_incidents: usize, components: ComponentNames) -> Self {
        let (events, _) = broadcast::channel(capacity.max(1));
        let (shutdown, _) = watch::channel(false);
        Hub {
            events,
            shutdown,
            incidents: Arc::new(IncidentCache::new(cached_incidents)),
            components: Arc::new(components),
        }
    }

    /// Every component's current name.
    pub fn components(&self) -> &ComponentNames {
        &self.components
    }

    /// Recently read incidents, forgotten as events about them are published.
    pub fn incidents(&self) -> &IncidentCache {
        &self.incidents
    }

    /// Publishes committed events, in sequence order. The writer calls it
    /// before it acknowledges them: the incident cache forgets what they
    /// changed first, then subscribers are told.
    pub fn publish(&self, events: &[Arc<LiveEvent>]) {
        for e in events {
            self.incidents.forget(&e.stored.keys);
        }
        for e in events {
            // No receiver is fine: nobody is listening live.
            let _ = self.events.send(Arc::clone(e));
        }
    }

    /// Receives every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.events.subscribe()
    }

    /// Tells every subscription to finish: deliver what is committed, then end.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves when the hub is shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}
