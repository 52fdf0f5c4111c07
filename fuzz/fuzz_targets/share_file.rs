//! Fuzz target `share_file`: see [`tfe_fuzz::share_file`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tfe_fuzz::share_file(data));
