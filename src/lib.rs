//! tfe: private inference for trained models under three-party replicated secret sharing.

pub mod tensor;
pub mod plan;
pub mod net;
pub mod mpc;
pub mod exec;
pub mod import;
