//! The truncation protocol over the documented range: 10^7 truncations of values spread
//! over |z| < 2^62 - 2^f (scale 2^(2f)): not one is more than one unit from z/2^f rounded to
//! nearest, and the errors average out.

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
            v.clamp(-(1 << 62) + 1, (1 << 62) - (1 << FRAC_BITS)) as u64
        })
        .collect()
}

#[test]
fn ten_million_truncations_have_no_large_error() {
    let mut large_errors = 0usize;
    // Results one below, at and one above z/2^f rounded to nearest.
    let mut off = [0usize; 3];
    let mut error_sum = 0f64;
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
            let (v, t) = (v as i64 as i128, t as i64 as i128);
            let nearest = (v + (1 << (FRAC_BITS - 1))) >> FRAC_BITS;
            match t - nearest {
                d @ -1..=1 => off[(d + 1) as usize] += 1,
                _ => large_errors += 1,
            }
            error_sum += ((t << FRAC_BITS) - v) as f64 / f64::from(1 << FRAC_BITS);
        }
    }
    assert_eq!(
        large_errors, 0,
        "{large_errors} of {TOTAL} truncations had a large error"
    );
    // The carries of the low bits (the value's against the mask's, and the mask's two
    // halves') move some results down and as many up (a quarter each where z/2^f has uniform
    // fractional bits, fewer on the round values this sweep also has): a protocol that never
    // did would not be the probabilistic truncation this claims to be, and one whose moves
    // were lopsided would be biased.
    let fraction = |k: usize| off[k] as f64 / TOTAL as f64;
    assert!(
        (0.1..0.35).contains(&fraction(0)) && (0.1..0.35).contains(&fraction(2)),
        "results below, at and above the nearest: {off:?}"
    );
    let mean = error_sum / TOTAL as f64;
    assert!(mean.abs() < 0.01, "mean error {mean} units: biased");
}

/// A truncation by no bits, or by more than a product has headroom for, is refused with an
/// error at every party, never a panic (the shifts by f - 1 and 62 - f would overflow).
#[test]
fn a_truncation_past_the_range_is_an_error() {
    for f in [0, 62, 63, 64, 200] {
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
