//! Untrusted config text: loading must never panic; it yields a Config or errors that each
//! name a reason.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env: BTreeMap<String, String> = BTreeMap::new();
    if let Err(errors) = portcullis_config::from_str(text, None, &env) {
        assert!(!errors.to_string().is_empty());
    }
});
