//! `envelope::parse` over raw bytes: never panics; a rejection always says
//! why and parks as malformed or too_large; an accepted envelope obeys
//! section 3, its `data` is a slice of the input, and the envelope rebuilt
//! from its fields parses to the same one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_worker_fuzz::{MAX, check_parse};

fuzz_target!(|body: &[u8]| {
    let accepted = check_parse(body, MAX);
    // The size limit is checked before anything else: one byte under the
    // body's size is always too_large, whatever the bytes.
    if let Some(limit) = body.len().checked_sub(1) {
        assert!(!check_parse(body, limit));
    }
    // ...and a limit of exactly the size changes nothing.
    assert_eq!(check_parse(body, body.len()), accepted);
});
