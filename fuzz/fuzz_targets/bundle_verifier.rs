//! The offline bundle verifier (`docket verify-bundle`): any file must be accepted or refused
//! with a typed failure, never a panic.
//!
//! Most changes to a bundle are caught by its digests, so half of the inputs are resealed first:
//! when the input reads as a bundle, the manifest's digests are recomputed for the changed
//! contents, and the verifier's later checks (key chain, hashes, signatures, inclusion proofs,
//! scope, view) meet it. A resealed bundle that still verifies must describe its own events.

#![no_main]

use docket::transparency::bundle::{Bundle, VerifyOptions, verify_bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let options = VerifyOptions::default();
    if mode % 2 == 0 {
        let _ = verify_bundle(rest, &options);
        return;
    }
    let Ok(mut bundle) = serde_json::from_slice::<Bundle>(rest) else {
        let _ = verify_bundle(rest, &options);
        return;
    };
    if bundle.seal().is_err() {
        return;
    }
    let Ok(bytes) = bundle.to_bytes() else {
        return;
    };
    if let Ok(report) = verify_bundle(&bytes, &options) {
        assert_eq!(report.events, bundle.events.len() as u64);
    }
});
