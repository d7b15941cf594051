//! The closed vocabularies: severity, kind, status, impact.
//!
//! Each enum carries a stable integer code, used as the storage code and equal
//! to the proto enum number, so neither can drift without a test noticing.

macro_rules! coded_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal => $api:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $api)] $variant = $code),+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable integer code (storage and proto number).
            pub fn code(self) -> i32 {
                self as i32
            }

            /// The API (proto) name of the value, e.g. `INCIDENT_STATUS_IN_PROGRESS`;
            /// also its stored and FieldChange form.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $api,)+
                }
            }

            /// The value with this code, if any.
            pub fn from_code(code: i32) -> Option<Self> {
                match code {
                    $($code => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use coded_enum;

coded_enum!(
    /// How badly an incident hurts; P0 is the worst.
    Severity { P0 = 1 => "SEVERITY_P0", P1 = 2 => "SEVERITY_P1", P2 = 3 => "SEVERITY_P2", P3 = 4 => "SEVERITY_P3", P4 = 5 => "SEVERITY_P4" }
);

coded_enum!(
    /// Unplanned incident or planned maintenance.
    IncidentKind { Incident = 1 => "INCIDENT_KIND_INCIDENT", Maintenance = 2 => "INCIDENT_KIND_MAINTENANCE" }
);

coded_enum!(
    /// Lifecycle status; the first four belong to incidents, the rest to maintenance.
    IncidentStatus {
        Investigating = 1 => "INCIDENT_STATUS_INVESTIGATING",
        Identified = 2 => "INCIDENT_STATUS_IDENTIFIED",
        Monitoring = 3 => "INCIDENT_STATUS_MONITORING",
        Resolved = 4 => "INCIDENT_STATUS_RESOLVED",
        Scheduled = 5 => "INCIDENT_STATUS_SCHEDULED",
        InProgress = 6 => "INCIDENT_STATUS_IN_PROGRESS",
        Verifying = 7 => "INCIDENT_STATUS_VERIFYING",
        Completed = 8 => "INCIDENT_STATUS_COMPLETED",
    }
);

coded_enum!(
    /// How badly a component is affected.
    ImpactLevel {
        Operational = 1 => "IMPACT_LEVEL_OPERATIONAL",
        DegradedPerformance = 2 => "IMPACT_LEVEL_DEGRADED_PERFORMANCE",
        PartialOutage = 3 => "IMPACT_LEVEL_PARTIAL_OUTAGE",
        MajorOutage = 4 => "IMPACT_LEVEL_MAJOR_OUTAGE",
        UnderMaintenance = 5 => "IMPACT_LEVEL_UNDER_MAINTENANCE",
    }
);

coded_enum!(
    /// Where a follow-up action stands.
    ActionItemStatus { Open = 1 => "ACTION_ITEM_STATUS_OPEN", InProgress = 2 => "ACTION_ITEM_STATUS_IN_PROGRESS", Done = 3 => "ACTION_ITEM_STATUS_DONE", WontDo = 4 => "ACTION_ITEM_STATUS_WONT_DO" }
);

coded_enum!(
    /// How urgent a follow-up action is.
    Priority { Low = 1 => "PRIORITY_LOW", Medium = 2 => "PRIORITY_MEDIUM", High = 3 => "PRIORITY_HIGH" }
);

impl ActionItemStatus {
    /// Done and won't-do items are closed; they carry a complete_time.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Done | Self::WontDo)
    }
}

impl IncidentStatus {
    /// The kind of record this status belongs to.
    pub fn kind(self) -> IncidentKind {
        match self {
            Self::Investigating | Self::Identified | Self::Monitoring | Self::Resolved => {
                IncidentKind::Incident
            }
            Self::Scheduled | Self::InProgress | Self::Verifying | Self::Completed => {
                IncidentKind::Maintenance
            }
        }
    }

    /// Resolved and completed records are closed; every other status is open.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Resolved | Self::Completed)
    }
}

impl IncidentKind {
    /// The status a new record of this kind starts in.
    pub fn initial_status(self) -> IncidentStatus {
        match self {
            Self::Incident => IncidentStatus::Investigating,
            Self::Maintenance => IncidentStatus::Scheduled,
        }
    }
}

impl ImpactLevel {
    /// Badness rank for "worst impact" folds: a planned maintenance ranks
    /// above operational but below any unplanned degradation.
    pub fn rank(self) -> u8 {
        match self {
            Self::Operational => 0,
            Self::UnderMaintenance => 1,
            Self::DegradedPerformance => 2,
            Self::PartialOutage => 3,
            Self::MajorOutage => 4,
        }
    }

    /// The worse of two impacts.
    pub fn worst(self, other: Self) -> Self {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

impl Severity {
    /// True when `self` is at least as severe as `floor` (P0 is the most severe).
    pub fn at_least(self, floor: Severity) -> bool {
        self.code() <= floor.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for s in IncidentStatus::ALL {
            assert_eq!(IncidentStatus::from_code(s.code()), Some(*s));
        }
        assert_eq!(IncidentStatus::from_code(0), None);
        assert_eq!(IncidentStatus::from_code(9), None);
    }

    #[test]
    fn statuses_belong_to_one_kind_and_only_terminal_ones_close() {
        let closed: Vec<_> = IncidentStatus::ALL
            .iter()
            .filter(|s| s.is_closed())
            .collect();
        assert_eq!(
            closed,
            [&IncidentStatus::Resolved, &IncidentStatus::Completed]
        );
        assert_eq!(IncidentStatus::Verifying.kind(), IncidentKind::Maintenance);
        assert_eq!(IncidentStatus::Monitoring.kind(), IncidentKind::Incident);
    }

    #[test]
    fn major_outage_is_the_worst_impact() {
        let worst = ImpactLevel::ALL
            .iter()
            .copied()
            .fold(ImpactLevel::Operational, ImpactLevel::worst);
        assert_eq!(worst, ImpactLevel::MajorOutage);
        assert_eq!(
            ImpactLevel::UnderMaintenance.worst(ImpactLevel::DegradedPerformance),
            ImpactLevel::DegradedPerformance
        );
    }

    #[test]
    fn severity_floor_includes_more_severe() {
        assert!(Severity::P0.at_least(Severity::P1));
        assert!(Severity::P1.at_least(Severity::P1));
        assert!(!Severity::P2.at_least(Severity::P1));
    }
}
