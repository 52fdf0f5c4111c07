//! Fuzz target `frames`: see [`tfe_fuzz::frames`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tfe_fuzz::frames(data));
