//! The public never reads one internal byte: for generated sequences of
//! writes (incidents, updates and notes of both visibilities, corrections of
//! their text and visibility, visibility changes, renames, deletes), every
//! read path of the public role and of
//! VIEW_PUBLIC is checked against a model of what is internal, built from
//! the writes alone — never from the server's own filter.

use incident_client::subscribe_timeline_request::Start;
use incident_client::tonic::Code;
use incident_client::*;
use proptest::prelude::*;
use proptest::sample::Index;
use prost::Message;

use super::*;

#[derive(Clone, Debug)]
enum Op {
    Declare {
        public: bool,
    },
    Post {
        incident: Index,
        public: bool,
    },
    Note {
        incident: Index,
        public: bool,
    },
    SetVisibility {
        incident: Index,
        public: bool,
    },
    Rename {
        incident: Index,
    },
    /// Replaces the incident's impact window (free text) with another.
    Rewindow {
        incident: Index,
    },
    SetDeleted {
        incident: Index,
        deleted: bool,
    },
    /// Corrects an update or a note: a new text, or only a new visibility.
    Correct {
        post: Index,
        text: bool,
        public: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<bool>().prop_map(|public| Op::Declare { public }),
        3 => (any::<Index>(), any::<bool>()).prop_map(|(incident, public)| Op::Post { incident, public }),
        3 => (any::<Index>(), any::<bool>()).prop_map(|(incident, public)| Op::Note { incident, public }),
        2 => (any::<Index>(), any::<bool>())
            .prop_map(|(incident, public)| Op::SetVisibility { incident, public }),
        1 => any::<Index>().prop_map(|incident| Op::Rename { incident }),
        1 => any::<Index>().prop_map(|incident| Op::Rewindow { incident }),
        1 => (any::<Index>(), any::<bool>())
            .prop_map(|(incident, deleted)| Op::SetDeleted { incident, deleted }),
        3 => (any::<Index>(), any::<bool>(), any::<bool>())
            .prop_map(|(post, text, public)| Op::Correct { post, text, public }),
    ]
}

/// An incident as the writes made it.
struct Known {
    id: String,
    reference: String,
    public: bool,
    deleted: bool,
    /// Every title it had; the last is the current one.
    titles: Vec<String>,
    /// Every impact window description it had; the last is the current one.
    windows: Vec<String>,
    summary: String,
    posts: Vec<Post>,
}

/// An update or a note.
struct Post {
    /// The update's id, or the note's sequence.
    id: String,
    note: bool,
    /// Every text it had; the last is the current one.
    texts: Vec<String>,
    public: bool,
}

#[derive(Default)]
struct Model {
    incidents: Vec<Known>,
    next: usize,
}

impl Model {
    /// A text no other write uses, and no other text contains.
    fn text(&mut self, what: &str) -> String {
        self.next += 1;
        format!("{what}{:05}Z", self.next)
    }

    /// What the public must not read now: everything of an INTERNAL or
    /// deleted incident, the INTERNAL updates and notes of the others, and
    /// every text a correction or a rename replaced.
    fn forbidden(&self) -> Vec<String> {
        let mut out = vec!["SECRET".to_owned()];
        for i in &self.incidents {
            for p in &i.posts {
                let (current, earlier) = p.texts.split_last().expect("a text");
                out.extend(earlier.iter().cloned());
                if !(i.public && !i.deleted && p.public) {
                    out.push(current.clone());
                }
            }
            let (title, earlier) = i.titles.split_last().expect("a title");
            let (window, earlier_windows) = i.windows.split_last().expect("a window");
            out.extend(earlier.iter().cloned());
            out.extend(earlier_windows.iter().cloned());
            if !i.public || i.deleted {
                out.push(title.clone());
                out.push(window.clone());
                out.push(i.summary.clone());
            }
        }
        out
    }
}

fn visibility(public: bool) -> Visibility {
    if public {
        Visibility::Public
    } else {
        Visibility::Internal
    }
}

/// The first forbidden text found in a reply, if any.
fn leak(what: &str, bytes: &[u8], forbidden: &[String]) -> Result<(), String> {
    for f in forbidden {
        if bytes.windows(f.len()).any(|w| w == f.as_bytes()) {
            return Err(format!("{what} holds {f:?}"));
        }
    }
    Ok(())
}

fn encoded<M: Message>(items: &[M]) -> Vec<u8> {
    items.iter().flat_map(|m| m.encode_to_vec()).collect()
}

/// Applies one generated write, through the API, and to the model.
async fn apply(w: &Writer, m: &mut Model, op: &Op) {
    let pick = |m: &Model, i: &Index| (!m.incidents.is_empty()).then(|| i.index(m.incidents.len()));
    match op {
        Op::Declare { public } => {
            let title = m.text("TITLE");
            let summary = m.text("SUMMARY");
            let window = m.text("WINDOW");
            let i = w
                .declare_with(&title, &summary, &window, visibility(*public))
                .await;
            m.incidents.push(Known {
                id: i.id,
                reference: i.reference,
                public: *public,
                deleted: false,
                titles: vec![title.clone()],
                windows: vec![window],
                summary,
                posts: Vec::new(),
            });
        }
        Op::Post { incident, public } | Op::Note { incident, public } => {
            let Some(n) = pick(m, incident).filter(|n| !m.incidents[*n].deleted) else {
                return;
            };
            let text = m.text(if matches!(op, Op::Post { .. }) {
                "UPDATE"
            } else {
                "NOTE"
            });
            let id = m.incidents[n].id.clone();
            let (id, note) = if matches!(op, Op::Post { .. }) {
                (w.post(&id, &text, visibility(*public)).await.id, false)
            } else {
                let e = w.note(&id, &text, visibility(*public)).await;
                (e.sequence.to_string(), true)
            };
            m.incidents[n].posts.push(Post {
                id,
                note,
                texts: vec![text],
                public: *public,
            });
        }
        Op::Correct { post, text, public } => {
            let live: Vec<(usize, usize)> = m
                .incidents
                .iter()
                .enumerate()
                .filter(|(_, i)| !i.deleted)
                .flat_map(|(n, i)| (0..i.posts.len()).map(move |p| (n, p)))
                .collect();
            if live.is_empty() {
                return;
            }
            let (n, p) = live[post.index(live.len())];
            let new_text = if *text { Some(m.text("FIXED")) } else { None };
            let incident_id = m.incidents[n].id.clone();
            let target = &mut m.incidents[n].posts[p];
            let sent = new_text.clone().unwrap_or_default();
            if target.note {
                let sequence = target.id.parse().expect("a sequence");
                w.edit_note(&incident_id, sequence, &sent, visibility(*public))
                    .await
                    .expect("correct a note");
            } else {
                w.edit_update(&target.id, &sent, visibility(*public))
                    .await
                    .expect("correct an update");
            }
            target.texts.extend(new_text);
            target.public = *public;
        }
        Op::SetVisibility { incident, public } => {
            let Some(n) = pick(m, incident).filter(|n| !m.incidents[*n].deleted) else {
                return;
            };
            w.set_visibility(&m.incidents[n].id, visibility(*public))
                .await;
            m.incidents[n].public = *public;
        }
        Op::Rename { incident } => {
            let Some(n) = pick(m, incident).filter(|n| !m.incidents[*n].deleted) else {
                return;
            };
            let title = m.text("TITLE");
            let renamed = Incident {
                id: m.incidents[n].id.clone(),
                title: title.clone(),
                ..Default::default()
            };
            w.update(renamed, &["title"]).await.expect("rename");
            m.incidents[n].titles.push(title);
        }
        Op::Rewindow { incident } => {
            let Some(n) = pick(m, incident).filter(|n| !m.incidents[*n].deleted) else {
                return;
            };
            let window = m.text("WINDOW");
            let rewindowed = Incident {
                id: m.incidents[n].id.clone(),
                impact_windows: windows(&window),
                ..Default::default()
            };
            w.update(rewindowed, &["impact_windows"])
                .await
                .expect("new impact window");
            m.incidents[n].windows.push(window);
        }
        Op::SetDeleted { incident, deleted } => {
            let Some(n) = pick(m, incident).filter(|n| m.incidents[*n].deleted != *deleted) else {
                return;
            };
            w.set_deleted(&m.incidents[n].id, *deleted).await;
            m.incidents[n].deleted = *deleted;
        }
    }
}

/// Everything one reader reads now, each read checked against `forbidden`;
/// returns the replies, so two readers can be compared.
async fn read_all(
    r: &Reader,
    m: &Model,
    head: u64,
    forbidden: &[String],
) -> Result<Vec<u8>, String> {
    let mut seen = Vec::new();
    let mut check = |what: &str, bytes: Vec<u8>| -> Result<(), String> {
        leak(what, &bytes, forbidden)?;
        seen.extend(bytes);
        Ok(())
    };
    for i in &m.incidents {
        let shown = i.public && !i.deleted;
        for name in [&i.id, &i.reference] {
            match r.get_incident(name).await {
                Ok(got) if shown => check("GetIncident", got.encode_to_vec())?,
                Ok(got) => return Err(format!("GetIncident {name} answered {got:?}")),
                Err(s) if !shown && s.code() == Code::NotFound => {
                    check("GetIncident error", s.message().as_bytes().to_vec())?
                }
                Err(s) => return Err(format!("GetIncident {name}: {s:?}")),
            }
        }
        match r.list_status_updates(&i.id, 2).await {
            Ok(pages) if shown => {
                let updates = pages.concat();
                check("ListStatusUpdates", encoded(&updates))?;
            }
            Ok(_) => return Err(format!("ListStatusUpdates answered for hidden {}", i.id)),
            Err(s) if !shown && s.code() == Code::NotFound => {}
            Err(s) => return Err(format!("ListStatusUpdates: {s:?}")),
        }
        match r.list_events(&i.id, 3).await {
            Ok(pages) if shown => check("ListTimelineEvents of one", encoded(&pages.concat()))?,
            Ok(_) => return Err(format!("ListTimelineEvents answered for hidden {}", i.id)),
            Err(s) if !shown && s.code() == Code::NotFound => {}
            Err(s) => return Err(format!("ListTimelineEvents of one: {s:?}")),
        }
    }
    let listed = r.list_incidents(2).await.map_err(|s| format!("{s:?}"))?;
    let mut ids: Vec<&str> = listed.iter().flatten().map(|i| i.id.as_str()).collect();
    ids.sort();
    let mut want: Vec<&str> = m
        .incidents
        .iter()
        .filter(|i| i.public && !i.deleted)
        .map(|i| i.id.as_str())
        .collect();
    want.sort();
    if ids != want {
        return Err(format!("ListIncidents listed {ids:?}, wanted {want:?}"));
    }
    check("ListIncidents", encoded(&listed.concat()))?;
    let events = r
        .list_events("", 3)
        .await
        .map_err(|s| format!("{s:?}"))?
        .concat();
    check("ListTimelineEvents", encoded(&events))?;
    let mut replay = r.subscribe(Start::AfterSequence(0)).await;
    let replayed = until(&mut replay, head).await;
    check("SubscribeTimeline replay", encoded(&replayed))?;
    if replayed != events {
        return Err("the replay and the list disagree".into());
    }
    Ok(seen)
}

async fn run(ops: Vec<Op>) -> Result<(), String> {
    let srv = server().await;
    let w = Writer::new(&srv).await;
    let readers = [Reader::public(&srv).await, Reader::preview(&srv).await];
    let mut live = Vec::new();
    for r in &readers {
        live.push(r.subscribe(Start::FromNow(())).await);
    }
    let mut m = Model::default();
    // After each write: the head, and what was forbidden when it committed.
    let mut after: Vec<(u64, Vec<String>)> = Vec::new();
    for op in &ops {
        apply(&w, &mut m, op).await;
        after.push((head(&srv).await, m.forbidden()));
    }
    let head = after.last().map_or(0, |(h, _)| *h);
    let mut live_seen = Vec::new();
    for stream in &mut live {
        let events = until(stream, head).await;
        for e in &events {
            let (_, forbidden) = after
                .iter()
                .find(|(h, _)| e.sequence <= *h)
                .ok_or("an event past the head")?;
            leak("a live event", &e.encode_to_vec(), forbidden)?;
        }
        live_seen.push(events);
    }
    if live_seen[0] != live_seen[1] {
        return Err("the public role and VIEW_PUBLIC saw different live streams".into());
    }
    let forbidden = m.forbidden();
    let role = read_all(&readers[0], &m, head, &forbidden).await?;
    let preview = read_all(&readers[1], &m, head, &forbidden).await?;
    if role != preview {
        return Err("the public role and VIEW_PUBLIC read different things".into());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn nothing_internal_reaches_the_public_through_any_read(ops in prop::collection::vec(op(), 4..16)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let outcome = rt.block_on(run(ops));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}
