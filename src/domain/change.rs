//! Field changes: what a patch changed, recorded as it is applied, so every
//! update event can say what moved from what to what.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One field that changed; large text fields carry the path only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: String,
    /// `Some(Null)` is "was unset"; `None` is "not recorded" (large text).
    /// They must survive storage apart, so a replay equals the live event.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub old_value: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub new_value: Option<Value>,
}

/// The changes of one patch, recorded as its fields are assigned.
#[derive(Debug, Default)]
pub struct Changes(pub Vec<FieldChange>);

impl Changes {
    /// Assigns `new`, if given, to `slot`, recording the change with its values.
    pub fn set<T: PartialEq + Serialize>(&mut self, path: &str, slot: &mut T, new: Option<T>) {
        let Some(new) = new else { return };
        if *slot != new {
            let old = serde_json::to_value(&*slot).unwrap_or(Value::Null);
            let new_value = serde_json::to_value(&new).unwrap_or(Value::Null);
            self.0.push(FieldChange::values(path, old, new_value));
            *slot = new;
        }
    }

    /// The same for a large field (text, sections): only the path is recorded.
    pub fn set_large<T: PartialEq>(&mut self, path: &str, slot: &mut T, new: Option<T>) {
        let Some(new) = new else { return };
        if *slot != new {
            self.0.push(FieldChange::path_only(path));
            *slot = new;
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A field that is present is `Some`, even when it holds `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl FieldChange {
    /// A change with its before and after values.
    pub fn values(path: &str, old: Value, new: Value) -> Self {
        FieldChange {
            path: path.to_owned(),
            old_value: Some(old),
            new_value: Some(new),
        }
    }

    /// A change of a large text field: the path alone.
    pub fn path_only(path: &str) -> Self {
        FieldChange {
            path: path.to_owned(),
            old_value: None,
            new_value: None,
        }
    }
}
