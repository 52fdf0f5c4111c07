//! Fuzz target `plan_file`: see [`tfe_fuzz::plan_file`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tfe_fuzz::plan_file(data));
