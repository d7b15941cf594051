//! Decoding and validating any request message never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    incidentd::fuzzing::decode_and_validate(data);
});
