//! Fuzz target `onnx`: see [`tfe_fuzz::onnx`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tfe_fuzz::onnx(data));
