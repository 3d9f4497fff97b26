//! Untrusted bytes, cut into pieces of any size, through the frame decoder and into both
//! protocol cores: errors are fine, panics are bugs. Every frame that decodes must survive an
//! encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fusion_sync::fuzzing::frame_decode(data));
