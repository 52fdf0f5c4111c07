//! tfe: private inference for trained models under three-party replicated secret sharing.

pub mod aggregate;
pub mod calibrate;
pub mod cli;
pub mod exec;
pub mod import;
pub mod lower;
pub mod mpc;
pub mod net;
pub mod plan;
pub mod private_file;
pub mod serve;
pub mod tensor;
pub mod train;
