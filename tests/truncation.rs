//! The truncation protocol over the documented range: 10^7 truncations of values spread
//! over |z| < 2^62 (scale 2^(2f)): not one is off by more than one unit in the last place,
//! and the errors average out; multiples of 2^f come out exact.

use ndarray::{ArrayD, IxDyn};
use tfe::mpc::Protocol;
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
    let mut rounded_up = 0usize;
    let mut error_sum = 0f64;
    for chunk in 0..TOTAL / CHUNK {
        let z = values(chunk);
        for (&v, &t) in z.iter().zip(truncated(&z, 1)[0].iter()) {
            let (v, t) = (v as i64 as i128, t as i64 as i128);
            match t - (v >> FRAC_BITS) {
                0 => {}
                1 => rounded_up += 1,
                _ => large_errors += 1,
            }
            error_sum += ((t << FRAC_BITS) - v) as f64 / f64::from(1 << FRAC_BITS);
        }
    }
    assert_eq!(
        large_errors, 0,
        "{large_errors} of {TOTAL} truncations had a large error"
    );
    // The carry from the low bits makes about half the results round up; a protocol that
    // never did would not be the probabilistic truncation this claims to be.
    assert!(
        rounded_up > TOTAL / 4 && rounded_up < 3 * TOTAL / 4,
        "{rounded_up} results rounded up"
    );
    // Rounding up with probability the fraction dropped: no bias.
    let mean = error_sum / TOTAL as f64;
    assert!(mean.abs() < 0.01, "mean error {mean} units: biased");
}

/// A product with an integer (a 0/1 indicator, a one-hot) is a multiple of 2^f: its
/// truncation is exact, whichever party deals, so ties and zeros stay what they are.
#[test]
fn multiples_of_the_unit_truncate_exactly() {
    let z: Vec<u64> = values(0)
        .into_iter()
        .map(|v| ((v as i64 >> FRAC_BITS) << FRAC_BITS) as u64)
        .collect();
    // Three calls: each party deals one.
    let got = truncated(&z, 3);
    for (dealer, got) in got.iter().enumerate() {
        for (&v, &t) in z.iter().zip(got.iter()) {
            let v = v as i64;
            assert_eq!(
                t as i64,
                v >> FRAC_BITS,
                "{v} / 2^{FRAC_BITS}, dealer {dealer}"
            );
        }
    }
}

/// `z` truncated by 2^FRAC_BITS under the protocol `calls` times in one run (the dealer
/// rotates per call), each result revealed.
fn truncated(z: &[u64], calls: usize) -> Vec<Vec<u64>> {
    let x = ArrayD::from_shape_vec(IxDyn(&[z.len()]), z.to_vec()).unwrap();
    let (_, got) = run_local(
        |party| {
            let share = recv_secret(party, Role::Client, &[z.len()])?;
            for _ in 0..calls {
                let t = party.truncate(&share.cur, FRAC_BITS)?;
                reveal_to(party, Role::Client, &t)?;
            }
            Ok(())
        },
        |client, _| {
            Dealer::from_os(Protocol::Aby3)?.send_secret(client, &x)?;
            (0..calls)
                .map(|_| {
                    recv_revealed(client, Protocol::Aby3, &[z.len()])
                        .map(|t| t.iter().copied().collect())
                })
                .collect::<anyhow::Result<Vec<_>>>()
        },
    )
    .unwrap();
    got
}

/// A truncation by no bits, or by more than a product has headroom for, is refused with an
/// error at every party, never a panic (the shift by 62 - f would overflow).
#[test]
fn a_truncation_past_the_range_is_an_error() {
    for f in [0, 63, 64, 200] {
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
