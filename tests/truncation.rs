//! The truncation protocol over the documented range: 10^7 truncations of values spread
//! over |z| < 2^62 (scale 2^(2f)), and not one is off by more than one unit in the last place.

use ndarray::{ArrayD, IxDyn};
use tfe::mpc::prf::{Prf, os_key};
use tfe::mpc::run_local;
use tfe::mpc::share::{Dealer, recv_revealed, recv_secret, reveal_to};
use tfe::net::Role;

const TOTAL: usize = 10_000_000;
const CHUNK: usize = 1_000_000;
const FRAC_BITS: u32 = 16;

/// Values across the whole range: uniform in (-2^62, 2^62), then uniform in magnitude
/// classes (so small values, common in practice, are covered as densely as large ones).
fn values(chunk: usize) -> Vec<u64> {
    Prf::new(os_key().unwrap())
        .words(1, CHUNK)
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let v = (r as i64) >> 2; // uniform over [-2^62, 2^62)
            let v = if chunk % 2 == 1 { v >> (i % 62) } else { v };
            v.max(-(1 << 62) + 1) as u64
        })
        .collect()
}

#[test]
fn ten_million_truncations_have_no_large_error() {
    let mut large_errors = 0usize;
    let mut off_by_one = 0usize;
    for chunk in 0..TOTAL / CHUNK {
        let z = values(chunk);
        let x = ArrayD::from_shape_vec(IxDyn(&[CHUNK]), z.clone()).unwrap();
        let (_, got) = run_local(
            |party| {
                let share = recv_secret(party, Role::Client, &[CHUNK])?;
                let t = party.truncate(&share.cur, FRAC_BITS)?;
                reveal_to(party, Role::Client, &t)
            },
            |client, _| {
                Dealer::from_os()?.send_secret(client, &x)?;
                recv_revealed(client, &[CHUNK])
            },
        )
        .unwrap();
        for (&v, &t) in z.iter().zip(got.iter()) {
            match (t as i64).wrapping_sub((v as i64) >> FRAC_BITS) {
                0 => {}
                1 => off_by_one += 1,
                _ => large_errors += 1,
            }
        }
    }
    assert_eq!(
        large_errors, 0,
        "{large_errors} of {TOTAL} truncations had a large error"
    );
    // The carry from the low bits makes about half the results round up; a protocol that
    // never did would not be the probabilistic truncation this claims to be.
    assert!(
        off_by_one > TOTAL / 4 && off_by_one < 3 * TOTAL / 4,
        "{off_by_one} results rounded up"
    );
}

/// A truncation by more bits than a product has headroom for is refused with an error at
/// every party, never a panic (the shifts by 62 - f and 63 - f would overflow).
#[test]
fn a_truncation_past_the_range_is_an_error() {
    for f in [63, 64, 200] {
        let term = ArrayD::from_elem(IxDyn(&[4]), 1u64);
        let err = run_local(|p| p.truncate(&term, f), |_, _| Ok(()))
            .err()
            .unwrap_or_else(|| panic!("a truncation by {f} bits succeeded"));
        assert!(
            format!("{err:#}").contains(&format!("truncation by {f} bits")),
            "{err:#}"
        );
    }
}
