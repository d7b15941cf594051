//! The entry point fuzz targets and property tests drive: decoding and
//! validating any request message, whatever its bytes, answers with a value or
//! a clean error and never panics.

use prost::Message;

use crate::api::parse::{self, Violations};
use crate::api::{action_items, components, incidents};
use crate::proto as pb;

/// The caller a fuzzed request comes from.
fn fuzzer() -> crate::service::Caller {
    crate::service::Caller {
        actor: "fuzz".into(),
        admin: false,
    }
}

/// Decodes `data[1..]` as the request message chosen by `data[0]` and runs the
/// validation its RPC runs. Returns whether the request was valid.
pub fn decode_and_validate(data: &[u8]) -> bool {
    let Some((&selector, bytes)) = data.split_first() else {
        return false;
    };
    let mut v = Violations::new();
    macro_rules! run {
        ($msg:ty, |$r:ident, $v:ident| $parse:expr) => {{
            let Ok($r) = <$msg>::decode(bytes) else {
                return false;
            };
            let $v = &mut v;
            let _ = $parse;
        }};
    }
    match selector % 8 {
        0 => run!(pb::CreateIncidentRequest, |r, v| {
            incidents::parse_create(&r, &fuzzer(), v)
        }),
        1 => run!(pb::UpdateIncidentRequest, |r, v| {
            incidents::parse_update(&r, &fuzzer(), v)
        }),
        2 => run!(pb::PostStatusUpdateRequest, |r, v| {
            incidents::parse_post(&r, &fuzzer(), v)
        }),
        3 => run!(pb::ListIncidentsRequest, |r, v| {
            parse::page_size(v, r.page_size);
            incidents::list_filter(v, &r, crate::domain::Audience::Full)
        }),
        4 => run!(pb::UpdatePostmortemRequest, |r, v| {
            incidents::parse_update_postmortem(&r, &fuzzer(), v)
        }),
        5 => run!(pb::PublishPostmortemRequest, |r, v| {
            incidents::parse_publish(&r, &fuzzer(), v)
        }),
        6 => run!(pb::CreateComponentRequest, |r, v| {
            components::parse_create(&r, &fuzzer(), v)
        }),
        _ => run!(pb::CreateActionItemRequest, |r, v| {
            action_items::parse_create(&r, &fuzzer(), v)
        }),
    }
    v.finish().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Arbitrary bytes never panic the decode-and-validate path.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            decode_and_validate(&data);
        }

        /// Well-formed messages with arbitrary field values never panic either,
        /// and a valid one is recognised as valid.
        #[test]
        fn arbitrary_incidents_validate_without_panic(
            title in "\\PC{0,210}",
            kind in -1i32..4,
            severity in -1i32..7,
            seconds in any::<i64>(),
            nanos in any::<i32>(),
            labels in proptest::collection::btree_map("[a-z]{0,70}", "\\PC{0,10}", 0..70),
        ) {
            let req = pb::CreateIncidentRequest {
                incident: Some(pb::Incident {
                    title: title.clone(),
                    kind,
                    severity,
                    labels: labels.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
                occur_time: Some(prost_types::Timestamp { seconds, nanos }),
            };
            let mut data = vec![0u8];
            data.extend(req.encode_to_vec());
            let valid = decode_and_validate(&data);
            let title_ok = parse::title(&title).is_ok();
            let labels_ok = labels.len() <= 64 && labels.keys().all(|k| parse::label_key(k).is_ok());
            let time_ok = parse::past_time(&Some(prost_types::Timestamp { seconds, nanos })).is_ok();
            prop_assert_eq!(valid, title_ok && (1..=2).contains(&kind) && (0..=5).contains(&severity) && labels_ok && time_ok);
        }
    }
}
