//! Fuzz target `npy`: see [`tfe_fuzz::npy`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tfe_fuzz::npy(data));
