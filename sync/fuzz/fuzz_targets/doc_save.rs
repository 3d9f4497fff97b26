//! Untrusted bytes as a peer's whole product document (`DocSave`, automerge's chunk loader,
//! which automerge's own v2 sync messages reach too): errors are fine, panics are bugs;
//! whatever is taken must read as a product or as nothing. Not in CI's fixed runs: the loader
//! is not hardened (see `doc_message.rs`), a run may find an input that allocates gigabytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // libfuzzer-sys's hook aborts on any panic, even one `docs` catches on purpose around
        // automerge (`docs::guarded`). A panic that escapes still fails the run: the harness
        // catches it and aborts.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| fusion_sync::fuzzing::doc_save(data)
);
