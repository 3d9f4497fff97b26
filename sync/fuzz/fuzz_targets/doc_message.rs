//! Untrusted bytes as a peer's automerge sync message for a product document: errors are fine,
//! panics are bugs; whatever is applied must read as a product or as nothing.
//!
//! Stored chunks (`DocSet::load`) are not fuzzed here: they come from the node's own redb file,
//! and automerge 0.12's chunk loader is not hardened against hostile input (a panic found here
//! is guarded, see `docs::guarded` and `regressions/`; some chunks make it allocate gigabytes).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // libfuzzer-sys's hook aborts on any panic, even one `docs` catches on purpose around
        // automerge (`docs::guarded`). A panic that escapes still fails the run: the harness
        // catches it and aborts.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| fusion_sync::fuzzing::doc_message(data)
);
