//! Plan and share files: what share files leave out, sizes checked before anything is
//! allocated, and files holding shares readable by their owner only.

use ndarray::{ArrayD, IxDyn};
use sha2::{Digest, Sha256};
use tfe::mpc::Protocol;
use tfe::plan::{Dim, Op, Plan, PlanBuilder, PlanFileError, Shape, SharedPlan, Source, Visibility};
use tfe::serve::deal;
use tfe::tensor::FixedPoint;

const MODEL_HASH: &str = "5f0b6a3c9d2e41f7a8b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4";

fn plan() -> Plan {
    let mut b = PlanBuilder::new(
        FixedPoint::default(),
        Source {
            file_name: "acme-credit-model.onnx".into(),
            sha256: MODEL_HASH.into(),
        },
    );
    let row = |n| Shape(vec![Dim::Batch(1), Dim::Fixed(n)]);
    let x = b.input("applicant", row(4));
    let data = ArrayD::from_shape_fn(IxDyn(&[4, 2]), |i| {
        (i[0] as f32 - 1.5) * (i[1] as f32 + 0.5)
    });
    let w = b.weight("coefficients", data, Visibility::Secret);
    let y = b.step("score", Op::MatMul, &[x, w], "score", row(2));
    b.output(y);
    b.build().unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The source model's hash fingerprints the secret weights and its name may say whose
/// model it is: no share file carries either, and the files of a dealing still match.
#[test]
fn share_files_carry_no_fingerprint_of_the_model() {
    let plan = plan();
    assert!(
        contains(&plan.to_bytes(), MODEL_HASH),
        "the owner's plan keeps it"
    );
    let files = deal(&plan, Protocol::Aby3).unwrap();
    for file in &files {
        let bytes = file.to_bytes();
        assert!(!contains(&bytes, MODEL_HASH), "{:?}", file.holder);
        assert!(!contains(&bytes, "acme-credit-model"), "{:?}", file.holder);
        let back = SharedPlan::from_bytes(&bytes, "share").unwrap();
        assert_eq!(back.plan_sha256, files[0].plan_sha256);
        assert_eq!(back.dealing, files[0].dealing);
        assert_eq!(back.plan.source, Source::withheld());
    }
}

/// Pond's files: each server keeps one additive share of every secret weight, the two
/// summing to the encoded weight, and the crypto producer's file holds no share at all;
/// every file reads back as a Pond dealing.
#[test]
fn pond_share_files_give_the_servers_one_share_each_and_the_producer_none() {
    let plan = plan();
    let files = deal(&plan, Protocol::Pond).unwrap();
    let back: Vec<SharedPlan> = (files.iter())
        .map(|f| SharedPlan::from_bytes(&f.to_bytes(), "share").unwrap())
        .collect();
    assert!(back.iter().all(|f| f.protocol == Protocol::Pond));
    assert_eq!(back[0].shares[0].len(), 1);
    assert_eq!(back[1].shares[0].len(), 1);
    assert!(back[2].shares.is_empty() && back[3].shares.is_empty());
    let encoded = plan
        .fixed_point
        .encode_array(plan.weights[0].data.view())
        .unwrap();
    let mut sum = back[0].shares[0][0].clone();
    sum.zip_mut_with(&back[1].shares[0][0], |a, b| *a = a.wrapping_add(*b));
    assert_eq!(sum, encoded);
    assert_ne!(back[0].shares[0][0], encoded);
    // The producer's file is the public plan alone: no longer than the client's.
    assert_eq!(files[2].to_bytes().len(), files[3].to_bytes().len());
}

/// The sections of a container file (after magic and version), each as its body.
fn sections(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut at = 12;
    let mut out = vec![];
    while at < bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        out.push(bytes[at + 8..at + 8 + len].to_vec());
        at += 8 + len + 32;
    }
    out
}

/// `bytes` with section `index` replaced by `body` (checksum recomputed).
fn with_section(bytes: &[u8], index: usize, body: &[u8]) -> Vec<u8> {
    let mut out = bytes[..12].to_vec();
    for (i, section) in sections(bytes).into_iter().enumerate() {
        let section = if i == index { body.to_vec() } else { section };
        out.extend_from_slice(&(section.len() as u64).to_le_bytes());
        out.extend_from_slice(&section);
        out.extend_from_slice(&Sha256::digest(&section));
    }
    out
}

/// The graph section of `bytes` (section `index`) with the weight's shape set to `dims`.
fn reshaped(bytes: &[u8], index: usize, dims: &[u64]) -> Vec<u8> {
    let mut graph: serde_json::Value = serde_json::from_slice(&sections(bytes)[index]).unwrap();
    let weight = graph["weights"][0]["value"].as_u64().unwrap() as usize;
    graph["values"][weight]["shape"] = serde_json::json!(dims);
    with_section(bytes, index, &serde_json::to_vec(&graph).unwrap())
}

fn damaged(result: Result<impl Sized, PlanFileError>) -> String {
    match result {
        Err(e @ PlanFileError::Damaged { .. }) => e.to_string(),
        Err(e) => panic!("expected a damaged file, got: {e}"),
        Ok(_) => panic!("a file with impossible weight shapes was accepted"),
    }
}

/// Shapes whose sizes overflow, or that no section holds, are refused with a message,
/// without allocating (a 2^40-element weight would abort the process).
#[test]
fn weight_sizes_are_checked_before_anything_is_allocated() {
    let plan_bytes = plan().to_bytes();
    let files = deal(&plan(), Protocol::Aby3).unwrap();
    let party = files[0].to_bytes();
    let client = files[3].to_bytes();
    for dims in [
        vec![1u64 << 40],
        vec![1 << 32, 1 << 32, 16],
        vec![3, 2, 1 << 20],
    ] {
        let plan = damaged(Plan::from_bytes(&reshaped(&plan_bytes, 0, &dims), "p"));
        let party = damaged(SharedPlan::from_bytes(&reshaped(&party, 1, &dims), "s"));
        // The client's file stores no secret weight: it may stand zeros in for up to 2^31
        // values (then fail its header's hash here), not for the larger shapes.
        let client = damaged(SharedPlan::from_bytes(&reshaped(&client, 1, &dims), "c"));
        if dims[0] > 3 {
            assert!(
                client.contains("more than") || client.contains("overflow"),
                "{client}"
            );
        }
        for message in [plan, party] {
            assert!(
                message.contains("overflow")
                    || message.contains("bytes")
                    || message.contains("more than"),
                "{dims:?}: {message}"
            );
        }
    }
}

/// A share file written over an existing, world-readable one ends up readable by its
/// owner only.
#[cfg(unix)]
#[test]
fn share_files_are_owner_only_even_over_an_existing_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("tfe-plan-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.party0.plan");
    std::fs::write(&path, b"left over").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let files = deal(&plan(), Protocol::Aby3).unwrap();
    files[0].write(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    assert_eq!(SharedPlan::read(&path).unwrap().shares.len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
