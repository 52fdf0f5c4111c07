//! Fuzz target `config`: see [`tfe_fuzz::config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tfe_fuzz::config(data));
