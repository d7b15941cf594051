//! Seeds: real incident reports kept as data in `seeds/*.toml`, loaded through
//! the same request validation and use cases as the RPCs (same checks, same
//! events, same ids). All seeds load in one transaction: a bad one loads
//! nothing. A seed whose permanent key is already present is skipped.

pub mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::DateTime;
use prost_types::{Duration as PbDuration, FieldMask, Timestamp};

use crate::api::parse::Violations;
use crate::api::{
    action_items as api_items, components as api_components, incidents as api_incidents,
};
use crate::domain::ComponentId;
use crate::error::Error;
use crate::proto as pb;
use crate::service::Caller;
use crate::store::{Store, WriteCtx};
use schema::SeedFile;

/// The actor of every event a seed writes.
pub const SEED_ACTOR: &str = "seed";

/// A seed file that failed: which file, which field, why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {reason}")]
pub struct SeedError {
    pub file: String,
    pub field: String,
    pub reason: String,
}

/// A checked seed, ready to load: its requests hold component *paths*
/// ("Group/Child") where ids go, resolved when the components exist.
pub struct Seed {
    file: String,
    key: String,
    source: String,
    groups: Vec<schema::SeedGroup>,
    create: pb::CreateIncidentRequest,
    updates: Vec<pb::PostStatusUpdateRequest>,
    milestones: Option<pb::UpdateIncidentRequest>,
    action_items: Vec<pb::CreateActionItemRequest>,
    postmortem: Option<(pb::UpdatePostmortemRequest, pb::PublishPostmortemRequest)>,
}

/// What loading did to one seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Loaded { key: String, reference: String },
    Skipped { key: String },
}

/// Reads and checks every `*.toml` of `dir`, in name order.
pub fn read_dir(dir: &Path) -> Result<Vec<Seed>, SeedError> {
    let io = |e: std::io::Error| SeedError {
        file: dir.display().to_string(),
        field: "-".into(),
        reason: e.to_string(),
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    paths.retain(|p| p.extension().is_some_and(|x| x == "toml"));
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| SeedError {
                file: p.display().to_string(),
                field: "-".into(),
                reason: e.to_string(),
            })?;
            parse(&p.display().to_string(), &text)
        })
        .collect()
}

/// Parses and checks one seed file's text.
pub fn parse(file: &str, text: &str) -> Result<Seed, SeedError> {
    let err = |field: &str, reason: String| SeedError {
        file: file.to_owned(),
        field: field.to_owned(),
        reason,
    };
    let f: SeedFile = toml::from_str(text).map_err(|e| {
        let field = e
            .message()
            .split('`')
            .nth(1)
            .map_or_else(|| "-".to_owned(), str::to_owned);
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        let at = line.map_or(String::new(), |l| format!(" (line {l})"));
        err(&field, format!("{}{at}", e.message().trim()))
    })?;
    if f.key.trim().is_empty() {
        return Err(err("key", "must not be empty".into()));
    }
    let paths = component_paths(&f.components);
    let component = |field: &str, path: &str| -> Result<String, SeedError> {
        if paths.contains(&path.to_owned()) {
            Ok(path.to_owned())
        } else {
            Err(err(
                field,
                format!("component {path:?} is not declared under [[components]]"),
            ))
        }
    };

    let i = &f.incident;
    let kind = enum_value(
        i.kind.as_str(),
        "INCIDENT_KIND_",
        pb::IncidentKind::from_str_name,
    )
    .ok_or_else(|| err("incident.kind", format!("unknown kind {:?}", i.kind)))?;
    let severity = match &i.severity {
        None => 0,
        Some(s) => enum_value(s, "SEVERITY_", pb::Severity::from_str_name)
            .ok_or_else(|| err("incident.severity", format!("unknown severity {s:?}")))?,
    };
    let status = match &i.status {
        None => 0,
        Some(s) => enum_value(s, "INCIDENT_STATUS_", pb::IncidentStatus::from_str_name)
            .ok_or_else(|| err("incident.status", format!("unknown status {s:?}")))?,
    };
    let mut windows = Vec::new();
    for (n, w) in f.impact_windows.iter().enumerate() {
        let field = |name: &str| format!("impact_windows[{n}].{name}");
        windows.push(pb::ImpactWindow {
            start_time: Some(time(&w.start).map_err(|r| err(&field("start"), r))?),
            end_time: w
                .end
                .as_deref()
                .map(time)
                .transpose()
                .map_err(|r| err(&field("end"), r))?,
            impact: enum_value(&w.impact, "IMPACT_LEVEL_", pb::ImpactLevel::from_str_name)
                .ok_or_else(|| err(&field("impact"), format!("unknown impact {:?}", w.impact)))?,
            component_ids: w
                .components
                .iter()
                .map(|c| component(&field("components"), c))
                .collect::<Result<_, _>>()?,
            description: w.description.clone(),
            duration: w
                .duration
                .as_deref()
                .map(|d| {
                    humantime::parse_duration(d)
                        .map(|d| PbDuration {
                            seconds: d.as_secs() as i64,
                            nanos: d.subsec_nanos() as i32,
                        })
                        .map_err(|e| err(&field("duration"), format!("{d:?}: {e}")))
                })
                .transpose()?,
        });
    }
    let create = pb::CreateIncidentRequest {
        incident: Some(pb::Incident {
            // The seeds are published reports.
            visibility: pb::Visibility::Public as i32,
            title: i.title.clone(),
            summary: i.summary.clone(),
            kind,
            severity,
            status,
            impact_windows: windows,
            labels: i.labels.clone().into_iter().collect(),
            ..Default::default()
        }),
        request_id: String::new(),
        occur_time: Some(time(&i.declare_time).map_err(|r| err("incident.declare_time", r))?),
    };

    let mut updates = Vec::new();
    for (n, u) in f.updates.iter().enumerate() {
        let field = |name: &str| format!("updates[{n}].{name}");
        let mut impacts = Vec::new();
        for (c, level) in &u.impacts {
            impacts.push(pb::ComponentImpact {
                component_id: component(&field("impacts"), c)?,
                impact: enum_value(level, "IMPACT_LEVEL_", pb::ImpactLevel::from_str_name)
                    .ok_or_else(|| err(&field("impacts"), format!("unknown impact {level:?}")))?,
                component_name: String::new(),
            });
        }
        updates.push(pb::PostStatusUpdateRequest {
            incident_id: String::new(),
            status: match &u.status {
                None => 0,
                Some(s) => enum_value(s, "INCIDENT_STATUS_", pb::IncidentStatus::from_str_name)
                    .ok_or_else(|| err(&field("status"), format!("unknown status {s:?}")))?,
            },
            message: u.message.clone(),
            component_impacts: impacts,
            next_update_time: u
                .next_update
                .as_deref()
                .map(time)
                .transpose()
                .map_err(|r| err(&field("next_update"), r))?,
            visibility: pb::Visibility::Public as i32,
            request_id: String::new(),
            occur_time: Some(time(&u.time).map_err(|r| err(&field("time"), r))?),
        });
    }

    let m = &f.milestones;
    let mut mask = Vec::new();
    let mut milestone =
        |name: &str, value: &Option<String>| -> Result<Option<Timestamp>, SeedError> {
            let Some(v) = value else { return Ok(None) };
            mask.push(name.to_owned());
            time(v)
                .map(Some)
                .map_err(|r| err(&format!("milestones.{name}"), r))
        };
    let milestone_incident = pb::Incident {
        identify_time: milestone("identify_time", &m.identify_time)?,
        mitigate_time: milestone("mitigate_time", &m.mitigate_time)?,
        resolve_time: milestone("resolve_time", &m.resolve_time)?,
        ..Default::default()
    };
    let milestones = (!mask.is_empty()).then(|| pb::UpdateIncidentRequest {
        incident: Some(milestone_incident),
        update_mask: Some(FieldMask { paths: mask }),
        request_id: String::new(),
    });

    let mut items = Vec::new();
    for (n, a) in f.action_items.iter().enumerate() {
        let status = match &a.status {
            None => pb::ActionItemStatus::Open as i32,
            Some(s) => enum_value(
                s,
                "ACTION_ITEM_STATUS_",
                pb::ActionItemStatus::from_str_name,
            )
            .ok_or_else(|| {
                err(
                    &format!("action_items[{n}].status"),
                    format!("unknown status {s:?}"),
                )
            })?,
        };
        items.push(pb::CreateActionItemRequest {
            action_item: Some(pb::ActionItem {
                title: a.title.clone(),
                description: a.description.clone(),
                owner: a.owner.clone(),
                status,
                labels: a.labels.clone().into_iter().collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        });
    }

    let postmortem = match &f.postmortem {
        None => None,
        Some(p) => Some((
            pb::UpdatePostmortemRequest {
                postmortem: Some(pb::Postmortem {
                    body: p.body.clone(),
                    author: p.author.clone(),
                    sections: p
                        .sections
                        .iter()
                        .map(|s| pb::PostmortemSection {
                            title: s.title.clone(),
                            body: s.body.clone(),
                        })
                        .collect(),
                    ..Default::default()
                }),
                update_mask: None,
                request_id: String::new(),
            },
            pb::PublishPostmortemRequest {
                incident_id: String::new(),
                etag: String::new(),
                request_id: String::new(),
                occur_time: Some(
                    time(&p.publish_time).map_err(|r| err("postmortem.publish_time", r))?,
                ),
            },
        )),
    };

    Ok(Seed {
        file: file.to_owned(),
        key: f.key,
        source: f.source,
        groups: f.components,
        create,
        updates,
        milestones,
        action_items: items,
        postmortem,
    })
}

/// "Group" and "Group/Child" for every declared component.
fn component_paths(groups: &[schema::SeedGroup]) -> Vec<String> {
    let mut out = Vec::new();
    for g in groups {
        out.push(g.name.clone());
        for c in &g.children {
            out.push(format!("{}/{c}", g.name));
        }
    }
    out
}

/// An enum value by its short name ("P1") or full name ("SEVERITY_P1").
fn enum_value<E: Into<i32>>(name: &str, prefix: &str, from: fn(&str) -> Option<E>) -> Option<i32> {
    let full = if name.starts_with(prefix) {
        name.to_owned()
    } else {
        format!("{prefix}{name}")
    };
    from(&full).map(Into::into).filter(|v| *v != 0)
}

/// An RFC 3339 time with its offset, as the report wrote it.
fn time(s: &str) -> Result<Timestamp, String> {
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time with offset: {e}"))?;
    Ok(Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    })
}

/// Loads seeds in one transaction; seeds already present are skipped.
pub async fn load(store: &Store, seeds: Vec<Seed>) -> Result<Vec<Outcome>, SeedError> {
    store
        .write(move |ctx| {
            Box::pin(async move {
                crate::store::seeds::hold(ctx.conn()).await?;
                let mut outcomes = Vec::new();
                for seed in seeds {
                    let file = seed.file.clone();
                    let outcome = load_one(ctx, seed).await.map_err(|failed| {
                        let (field, e) = *failed;
                        Error::InvalidArgument(vec![crate::error::FieldViolation {
                            field: format!("{file}\u{0}{field}"),
                            description: describe(e),
                        }])
                    })?;
                    outcomes.push(outcome);
                }
                Ok(outcomes)
            })
        })
        .await
        .map_err(|e| match e {
            Error::InvalidArgument(mut v) if v.len() == 1 => {
                let v = v.remove(0);
                let (file, field) = v.field.split_once('\u{0}').unwrap_or(("-", &v.field));
                SeedError {
                    file: file.to_owned(),
                    field: field.to_owned(),
                    reason: v.description,
                }
            }
            other => SeedError {
                file: "-".into(),
                field: "-".into(),
                reason: describe(other),
            },
        })
}

fn describe(e: Error) -> String {
    match e {
        Error::InvalidArgument(v) => v
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// The seed step that failed, and why.
type StepError = Box<(String, Error)>;

/// Validates a request the way its RPC does, naming the seed step on failure.
fn checked<T>(
    step: &str,
    parse: impl FnOnce(&mut Violations) -> Option<T>,
) -> Result<T, StepError> {
    let mut v = Violations::new();
    let out = parse(&mut v);
    v.finish().map_err(|e| Box::new((step.to_owned(), e)))?;
    out.ok_or_else(|| Box::new((step.to_owned(), Error::invalid("-", "is incomplete"))))
}

async fn load_one(ctx: &mut WriteCtx, mut seed: Seed) -> Result<Outcome, StepError> {
    let at = |step: &str| {
        let step = step.to_owned();
        move |e: Error| Box::new((step, e))
    };
    if crate::store::seeds::find(ctx.conn(), &seed.key)
        .await
        .map_err(at("key"))?
        .is_some()
    {
        return Ok(Outcome::Skipped { key: seed.key });
    }
    let caller = Caller {
        actor: SEED_ACTOR.to_owned(),
        admin: true,
    };

    // Components: reuse a live one of the same name and parent, else create it.
    let mut ids: HashMap<String, String> = HashMap::new();
    for (n, g) in seed.groups.iter().enumerate() {
        let step = format!("components[{n}]");
        let group = ensure_component(ctx, &caller, &step, &g.name, &g.description, None).await?;
        ids.insert(g.name.clone(), group.to_string());
        for child in &g.children {
            let id = ensure_component(ctx, &caller, &step, child, "", Some(group)).await?;
            ids.insert(format!("{}/{child}", g.name), id.to_string());
        }
    }
    let resolve = |path: &mut String| {
        if let Some(id) = ids.get(path.as_str()) {
            path.clone_from(id);
        }
    };

    if let Some(inc) = seed.create.incident.as_mut() {
        for w in &mut inc.impact_windows {
            w.component_ids.iter_mut().for_each(resolve);
        }
    }
    let create = checked("incident", |v| {
        api_incidents::parse_create(&seed.create, &caller, v)
    })?;
    let incident = ctx.run(&create).await.map_err(at("incident"))?;
    let id = incident.id.to_string();
    // Facts the report states outright date from its last post at the latest;
    // the postmortem's content (its action items too) from its publication.
    let last_post = seed
        .updates
        .last()
        .and_then(|u| u.occur_time)
        .or(seed.create.occur_time);
    let written = seed
        .postmortem
        .as_ref()
        .and_then(|(_, publish)| publish.occur_time)
        .or(last_post);
    let instant = |t: Option<prost_types::Timestamp>| {
        t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32))
    };
    let (last_post, written) = (instant(last_post), instant(written));

    for (n, mut u) in seed.updates.into_iter().enumerate() {
        let step = format!("updates[{n}]");
        u.incident_id.clone_from(&id);
        u.component_impacts
            .iter_mut()
            .for_each(|c| resolve(&mut c.component_id));
        let post = checked(&step, |v| api_incidents::parse_post(&u, &caller, v))?;
        ctx.run(&post).await.map_err(at(&step))?;
    }

    if let Some(mut m) = seed.milestones {
        if let Some(inc) = m.incident.as_mut() {
            inc.id.clone_from(&id);
        }
        let mut update = checked("milestones", |v| {
            api_incidents::parse_update(&m, &caller, v)
        })?;
        update.occur_time = last_post;
        ctx.run(&update).await.map_err(at("milestones"))?;
    }

    for (n, mut a) in seed.action_items.into_iter().enumerate() {
        let step = format!("action_items[{n}]");
        if let Some(item) = a.action_item.as_mut() {
            item.incident_id.clone_from(&id);
        }
        let mut create = checked(&step, |v| api_items::parse_create(&a, &caller, v))?;
        create.occur_time = written;
        ctx.run(&create).await.map_err(at(&step))?;
    }

    if let Some((mut update, mut publish)) = seed.postmortem {
        if let Some(p) = update.postmortem.as_mut() {
            p.incident_id.clone_from(&id);
        }
        publish.incident_id.clone_from(&id);
        let mut edit = checked("postmortem", |v| {
            api_incidents::parse_update_postmortem(&update, &caller, v)
        })?;
        edit.occur_time = written;
        ctx.run(&edit).await.map_err(at("postmortem"))?;
        let publish = checked("postmortem.publish_time", |v| {
            api_incidents::parse_publish(&publish, &caller, v)
        })?;
        ctx.run(&publish)
            .await
            .map_err(at("postmortem.publish_time"))?;
    }

    let now = ctx.now();
    crate::store::seeds::record(ctx.conn(), &seed.key, incident.id, &seed.source, now)
        .await
        .map_err(at("key"))?;
    Ok(Outcome::Loaded {
        key: seed.key,
        reference: incident.reference(),
    })
}

async fn ensure_component(
    ctx: &mut WriteCtx,
    caller: &Caller,
    step: &str,
    name: &str,
    description: &str,
    parent: Option<ComponentId>,
) -> Result<ComponentId, StepError> {
    let at = |e: Error| Box::new((step.to_owned(), e));
    if let Some(id) = crate::store::components::live_named(ctx.conn(), parent, name)
        .await
        .map_err(at)?
    {
        return Ok(id);
    }
    let req = pb::CreateComponentRequest {
        component: Some(pb::Component {
            name: name.to_owned(),
            description: description.to_owned(),
            parent_id: parent.map(|p| p.to_string()).unwrap_or_default(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let create = checked(step, |v| api_components::parse_create(&req, caller, v))?;
    let created = ctx.run(&create).await.map_err(at)?;
    Ok(created.id)
}
