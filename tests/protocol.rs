//! The protocol primitives against their plaintext definitions, run on three real parties.

use ndarray::{ArrayD, IxDyn};
use tfe::exec::human_bytes;
use tfe::mpc::Protocol;
use tfe::mpc::arith::{Factor, RingMap};
use tfe::mpc::cost::Cost;
use tfe::mpc::share::{Dealer, recv_revealed, recv_secret, reveal_to};
use tfe::mpc::{ArithShare, Party, arith::product_term, run_local, run_local_roles};
use tfe::net::local::LocalTransport;
use tfe::net::{Role, Stats, Transport};
use tfe::tensor::{Elem, broadcast::zip_with, matmul::matmul};

fn vector(values: Vec<u64>) -> ArrayD<u64> {
    ArrayD::from_shape_vec(IxDyn(&[values.len()]), values).unwrap()
}

/// Shares `inputs` from the client, runs `f` on the parties, and reveals its result.
fn run(
    inputs: Vec<ArrayD<u64>>,
    f: impl Fn(&mut Party, Vec<ArithShare>) -> anyhow::Result<ArithShare> + Sync,
) -> ArrayD<u64> {
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|x| x.shape().to_vec()).collect();
    let out_shape = std::sync::Mutex::new(None);
    let (_, out) = run_local(
        |party| {
            let shares = shapes
                .iter()
                .map(|s| recv_secret(party, Role::Client, s))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let y = f(party, shares)?;
            *out_shape.lock().unwrap() = Some(y.shape().to_vec());
            reveal_to(party, Role::Client, &y)
        },
        |client, _owner| {
            let mut dealer = Dealer::from_os(Protocol::Aby3)?;
            for x in &inputs {
                dealer.send_secret(client, x)?;
            }
            // The parties' result shape is the input shape in these tests.
            recv_revealed(client, Protocol::Aby3, &shapes[0])
        },
    )
    .unwrap();
    out
}

#[test]
fn reshare_of_a_product_is_the_product() {
    let x = vector(vec![3, u64::MAX, 1 << 40, 0, 17]);
    let y = vector(vec![5, 2, 1 << 30, 9, u64::MAX - 3]);
    let got = run(vec![x.clone(), y.clone()], |p, s| {
        let term = product_term(&s[0], &s[1], |a, b| {
            zip_with(&a.view(), &b.view(), |x, y| x.mul(y))
        })?;
        p.reshare(&term)
    });
    let expect: Vec<u64> = x
        .iter()
        .zip(y.iter())
        .map(|(a, b)| a.wrapping_mul(*b))
        .collect();
    assert_eq!(got, vector(expect));
}

/// `count` values uniform over [-2^62, 2^62) from a fixed seed (an LCG: reproducible).
fn spread(seed: u64, count: usize) -> impl Iterator<Item = i64> {
    std::iter::successors(Some(seed), |s| {
        Some(
            s.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        )
    })
    .skip(1)
    .take(count)
    .map(|s| (s as i64) >> 2)
}

#[test]
fn truncation_is_within_one_ulp_across_the_range() {
    let f = 16;
    let mut values: Vec<i64> = vec![
        0,
        1,
        -1,
        65535,
        65536,
        -65536,
        -65537,
        (1 << 62) - 1,
        -(1 << 62),
        123456789,
        -987654321,
    ];
    values.extend(spread(0x1234_5678_9abc_def0, 2000));
    let x = vector(values.iter().map(|&v| v as u64).collect());
    let got = run(vec![x], |p, s| p.truncate(&s[0].cur, f));
    for (v, g) in values.iter().zip(got.iter()) {
        let exact = v >> f;
        let diff = (*g as i64).wrapping_sub(exact);
        assert!(
            diff == 0 || diff == 1,
            "trunc({v}) = {} expected {exact} or +1",
            *g as i64
        );
    }
}

#[test]
fn relu_is_exact_at_the_edges() {
    let values: Vec<i64> = vec![
        0,
        1,
        -1,
        2,
        -2,
        i64::MAX,
        i64::MIN + 1,
        1 << 62,
        -(1 << 62),
        65536,
        -65536,
        77,
        -77,
        1 << 47,
        -(1 << 47),
    ];
    // more than 64 elements, so that packed bits span several words
    let values: Vec<i64> = values
        .iter()
        .cycle()
        .take(200)
        .enumerate()
        .map(|(i, v)| v.wrapping_add(i as i64 / 15))
        .collect();
    let x = vector(values.iter().map(|&v| v as u64).collect());
    let got = run(vec![x], |p, s| p.relu(&s[0], 64));
    for (v, g) in values.iter().zip(got.iter()) {
        assert_eq!(*g as i64, (*v).max(0), "relu({v})");
    }
}

/// A ReLU folded into a truncation (the comparison reads its first-round terms, its second
/// round rides the comparison's first) is the ReLU of the truncation, whichever party deals.
#[test]
fn relu_of_a_pending_truncation_is_the_relu_of_the_truncation() {
    let f = 16;
    let mut values: Vec<i64> = vec![0, 1, -1, 65535, 65536, -65536, -65537, (1 << 62) - 1];
    values.push(-(1 << 62));
    values.extend(spread(0x0bad_cafe_dead_beef, 300));
    let x = vector(values.iter().map(|&v| v as u64).collect());
    for before in 0..3 {
        let got = run(vec![x.clone()], |p, s| {
            // Earlier truncations rotate the dealer.
            for _ in 0..before {
                p.truncate(&s[0].cur, f)?;
            }
            let pending = p.truncate_open(&s[0].cur, f)?;
            p.relu_pending(&pending, 64 - f)
        });
        for (v, g) in values.iter().zip(got.iter()) {
            let exact = v >> f;
            let g = *g as i64;
            assert!(
                g == exact.max(0) || g == (exact + 1).max(0),
                "relu(trunc({v})) = {g}, expected {} or {} (dealer {before})",
                exact.max(0),
                (exact + 1).max(0)
            );
        }
    }
}

/// A comparison of `width` bits is exact for every |x| < 2^(width - 1), whatever lies above.
#[test]
fn narrow_comparisons_are_exact_within_their_range() {
    for width in [48u32, 33, 20, 18, 17, 6, 5, 2] {
        let limit = 1i64 << (width - 1);
        let mut values: Vec<i64> = vec![0, 1, -1, limit - 1, -limit + 1, limit / 2, -limit / 2];
        let mut state = 0x0bad_5eed_u64 + width as u64;
        for _ in 0..300 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            values.push((state as i64) % limit);
        }
        let x = vector(values.iter().map(|&v| v as u64).collect());
        // The comparison's dealer rotates with the call count: each party plays each part.
        for skip in 0..3 {
            let got = run(vec![x.clone()], |p, s| {
                for _ in 0..skip {
                    p.begin_call();
                }
                p.relu(&s[0], width)
            });
            for (v, g) in values.iter().zip(got.iter()) {
                assert_eq!(
                    *g as i64,
                    (*v).max(0),
                    "relu({v}) at width {width}, skip {skip}"
                );
            }
        }
    }
}

#[test]
fn gate_applies_one_comparison_to_several_values() {
    let xs: Vec<i64> = (0..150).map(|i| (i as i64 - 75) * 1_000_003).collect();
    let x = vector(xs.iter().map(|&v| v as u64).collect());
    let y = vector((0..150u64).map(|i| i * 7 + 1).collect());
    let got = run(vec![x, y.clone()], |p, s| {
        Ok(p.gate(&s[0], &[s[1].clone(), s[0].clone()], 64)?.remove(0))
    });
    for (i, (&v, g)) in xs.iter().zip(got.iter()).enumerate() {
        assert_eq!(*g, if v >= 0 { y[i] } else { 0 }, "gate at {v}");
    }
    let got = run(
        vec![vector(xs.iter().map(|&v| v as u64).collect())],
        |p, s| Ok(p.gate(&s[0], &[s[0].clone(), s[0].clone()], 48)?.remove(1)),
    );
    for (&v, g) in xs.iter().zip(got.iter()) {
        assert_eq!(*g as i64, v.max(0), "second gated value at {v}");
    }
}

#[test]
fn msb_onehot_marks_the_top_bit() {
    let values: Vec<u64> = vec![
        1,
        2,
        3,
        4,
        5,
        255,
        256,
        65535,
        65536,
        1 << 40,
        (1 << 45) + 12345,
        7,
        0,
    ];
    let width = 46u32;
    let got = run(vec![vector(values.clone())], |p, s| {
        let onehot = p.msb_onehot(&s[0], width)?;
        // Reveal sum_i h_i * (i + 1): the top bit's position plus one (0 for x = 0).
        let weights: Vec<u64> = (1..=width as u64).collect();
        let reduce = |a: &ndarray::ArrayD<u64>| {
            let n = a.shape()[1];
            ndarray::ArrayD::from_shape_fn(IxDyn(&[n]), |k| {
                (0..width as usize).fold(0u64, |acc, i| {
                    acc.wrapping_add(a[[i, k[0]]].wrapping_mul(weights[i]))
                })
            })
        };
        Ok(ArithShare {
            cur: reduce(&onehot.cur),
            next: reduce(&onehot.next),
        })
    });
    for (&v, g) in values.iter().zip(got.iter()) {
        let expect = if v == 0 {
            0
        } else {
            64 - v.leading_zeros() as u64
        };
        assert_eq!(*g, expect, "msb position of {v}");
    }
}

/// `count` ring elements spread over the ring, the same each run.
fn filler(shape: &[usize]) -> ArrayD<u64> {
    let len = shape.iter().product::<usize>() as u64;
    let values = (0..len).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
    ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
}

/// A call on the parties' shares of its operands.
type Call<'a> = dyn Fn(&mut Party, &[ArithShare]) -> anyhow::Result<()> + Sync + 'a;

/// What becomes of the operands before the metered calls (masking a weight for the session).
type Prepare = fn(&mut Party, Vec<ArithShare>) -> anyhow::Result<Vec<ArithShare>>;

/// What a call made each party send (words, by party id) and the rounds it took.
fn cost(views: [Stats; 3]) -> Cost {
    Cost {
        sent: views.map(|s| s.bytes_sent / 8),
        outside: 0,
        rounds: views.iter().map(|s| s.rounds).max().unwrap(),
    }
}

/// Each party's traffic in each of `calls` calls of `f` in a row under `protocol` (ABY3's
/// dealers rotate from one to the next), metered on the real transport, on secrets of
/// `shapes` the client dealt beforehand and `prepare` then took (unmetered); after each
/// call the client receives a reveal of shape `revealed` if given (for `f`s that reveal).
fn metered_calls(
    protocol: Protocol,
    shapes: &[&[usize]],
    revealed: Option<&[usize]>,
    prepare: Option<Prepare>,
    calls: usize,
    f: &Call<'_>,
) -> Vec<Cost> {
    let plain = |end: LocalTransport| -> Box<dyn Transport> { Box::new(end) };
    let (views, ()) = run_local_roles(
        &plain,
        protocol,
        &[Role::Client],
        |party| {
            let mut shares = (shapes.iter())
                .map(|s| recv_secret(party, Role::Client, s))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if let Some(prepare) = prepare {
                shares = prepare(party, shares)?;
            }
            (0..calls)
                .map(|_| {
                    let before = party.stats();
                    f(party, &shares)?;
                    Ok(party.stats() - before)
                })
                .collect::<anyhow::Result<Vec<_>>>()
        },
        |mut ends| {
            let mut dealer = Dealer::from_os(protocol)?;
            for shape in shapes {
                dealer.send_secret(&mut ends[0], &filler(shape))?;
            }
            for _ in 0..calls {
                if let Some(shape) = revealed {
                    recv_revealed(&mut ends[0], protocol, shape)?;
                }
            }
            Ok(())
        },
    )
    .unwrap();
    (0..calls)
        .map(|k| cost(views.each_ref().map(|v| v[k])))
        .collect()
}

/// What one call of `f` makes each party send under `protocol`, and its rounds.
fn metered_once(
    protocol: Protocol,
    shapes: &[&[usize]],
    revealed: Option<&[usize]>,
    f: &Call<'_>,
) -> Cost {
    metered_calls(protocol, shapes, revealed, None, 1, f).remove(0)
}

/// The ABY3 calls of `f` on a secret of `n` elements, three in a row, against `formula`
/// for each call's dealer (parties 1, 2, then 0: each party deals once).
fn check_each_dealer(
    n: usize,
    what: &str,
    f: impl Fn(&mut Party, &ArithShare) -> anyhow::Result<()> + Sync,
    formula: impl Fn(usize) -> Cost,
) {
    let calls = metered_calls(Protocol::Aby3, &[&[n]], None, None, 3, &|p, s| f(p, &s[0]));
    for (k, got) in calls.into_iter().enumerate() {
        let dealer = (k + 1) % 3;
        assert_eq!(
            got,
            formula(dealer),
            "{what} of {n}, party {dealer} dealing"
        );
    }
}

/// What the client sends to share a secret of `n` elements (after its first dealing, which
/// also carries its seeds).
fn metered_input(protocol: Protocol, n: usize) -> Cost {
    let (_, sent) = run_local_roles(
        &|end: LocalTransport| -> Box<dyn Transport> { Box::new(end) },
        protocol,
        &[Role::Client],
        |party| {
            recv_secret(party, Role::Client, &[1])?;
            recv_secret(party, Role::Client, &[n])
        },
        |mut ends| {
            let mut dealer = Dealer::from_os(protocol)?;
            dealer.send_secret(&mut ends[0], &filler(&[1]))?;
            let before = ends[0].stats();
            dealer.send_secret(&mut ends[0], &filler(&[n]))?;
            Ok(ends[0].stats() - before)
        },
    )
    .unwrap();
    Cost {
        outside: sent.bytes_sent / 8,
        ..Cost::FREE
    }
}

fn elementwise(a: &ArrayD<u64>, b: &ArrayD<u64>) -> anyhow::Result<ArrayD<u64>> {
    zip_with(&a.view(), &b.view(), |x, y| x.mul(y))
}

fn matrix(a: &ArrayD<u64>, b: &ArrayD<u64>) -> anyhow::Result<ArrayD<u64>> {
    matmul(&a.view(), &b.view())
}

/// The closed-form costs that `tfe-convert --check` estimates from are exact, party by
/// party, whichever party deals.
#[test]
fn every_call_costs_what_its_formula_says() {
    for n in [1usize, 63, 64, 65, 300] {
        let nu = n as u64;
        check_each_dealer(
            n,
            "reshare",
            |p, x| p.reshare(&x.cur).map(drop),
            |_| Cost::reshare(nu),
        );
        for f in [1u32, 16, 31, 40, 61] {
            check_each_dealer(
                n,
                &format!("truncation by 2^{f}"),
                |p, x| p.truncate(&x.cur, f).map(drop),
                |dealer| Cost::truncate(nu, f, dealer),
            );
            check_each_dealer(
                n,
                &format!("first round of a truncation by 2^{f}"),
                |p, x| p.truncate_open(&x.cur, f).map(drop),
                |dealer| Cost::truncate_open(nu, f, dealer),
            );
        }
        check_each_dealer(
            n,
            "ReLU of a pending truncation",
            |p, x| {
                let pending = p.truncate_open(&x.cur, 16)?;
                p.relu_pending(&pending, 48).map(drop)
            },
            |dealer| Cost::truncate_open(nu, 16, dealer) + Cost::relu_pending(nu, 48, dealer),
        );
        for width in [2u32, 3, 20, 47, 48, 64] {
            for gated in [1usize, 2] {
                check_each_dealer(
                    n,
                    &format!("gate at width {width}, {gated} gated"),
                    |p, x| p.gate(x, &vec![x.clone(); gated], width).map(drop),
                    |dealer| Cost::gate(nu, width, gated as u64, dealer),
                );
            }
        }
        for width in [5u32, 46] {
            check_each_dealer(
                n,
                &format!("msb_onehot at width {width}"),
                |p, x| p.msb_onehot(x, width).map(drop),
                |dealer| Cost::msb_onehot(nu, width, dealer),
            );
        }
    }
}

/// Pond's closed-form costs are exact too, party by party: products by Beaver triples
/// (element-wise, two pairs in one call, a matrix product), truncation, gates, the top
/// bit's one-hot, and for both protocols sharing an input and revealing a result.
#[test]
fn every_pond_call_costs_what_its_formula_says() {
    let pond = |shapes: &[&[usize]], f: &Call<'_>| metered_once(Protocol::Pond, shapes, None, f);
    for n in [1usize, 63, 64, 65, 300] {
        let nu = n as u64;
        assert_eq!(
            pond(&[&[n], &[n]], &|p, s| p
                .secret_products(
                    &[(Factor::Share(&s[0]), Factor::Share(&s[1]))],
                    &elementwise
                )
                .map(drop)),
            Cost::pond_products(2 * nu, nu),
            "product of {n}"
        );
        assert_eq!(
            pond(&[&[n], &[n]], &|p, s| {
                let (a, b) = (Factor::Share(&s[0]), Factor::Share(&s[1]));
                let pairs = [(a, b), (b, a)];
                p.secret_products(&pairs, &elementwise).map(drop)
            }),
            Cost::pond_products(4 * nu, nu),
            "sum of two products of {n}"
        );
        assert_eq!(
            pond(&[&[3, n], &[n, 5]], &|p, s| p
                .secret_products(&[(Factor::Share(&s[0]), Factor::Share(&s[1]))], &matrix)
                .map(drop)),
            Cost::pond_products(8 * nu, 15),
            "matrix product [3, {n}] x [{n}, 5]"
        );
        // Weights masked for the session together: one round for all of them.
        assert_eq!(
            pond(&[&[3, n], &[n, 5], &[5]], &|p, s| p
                .mask_for_session(&[&s[0], &s[1], &s[2]])
                .map(drop)),
            Cost::pond_mask(8 * nu + 5),
            "three values of 3x{n}, {n}x5 and 5 elements masked for the session at once"
        );
        // A weight masked for the session: opened once, then never by a product.
        assert_eq!(
            pond(&[&[3, n], &[n, 5]], &|p, s| {
                let w = p.mask_for_session(&[&s[1]])?.remove(0);
                let w = p.session_masked(&w);
                let pair = [(Factor::Share(&s[0]), Factor::Masked(&w))];
                p.secret_products(&pair, &matrix)?;
                p.secret_products(&pair, &matrix).map(drop)
            }),
            Cost::pond_mask(5 * nu)
                + Cost::pond_products(3 * nu, 15)
                + Cost::pond_products(3 * nu, 15),
            "matrix product [3, {n}] x [{n}, 5] with the weight masked for the session"
        );
        for f in [1u32, 16, 31, 40, 61] {
            assert_eq!(
                pond(&[&[n]], &|p, s| p.truncate(&s[0].cur, f).map(drop)),
                Cost::pond_truncate(nu, f),
                "truncate of {n} by 2^{f}"
            );
        }
        for width in [2u32, 3, 20, 47, 48, 64] {
            for gated in [1usize, 2] {
                assert_eq!(
                    pond(&[&[n]], &|p, s| p
                        .gate(&s[0], &vec![&s[0]; gated], width)
                        .map(drop)),
                    Cost::pond_gate(nu, width, gated as u64),
                    "gate of {n} values at width {width}, {gated} gated"
                );
            }
        }
        for width in [5u32, 46] {
            assert_eq!(
                pond(&[&[n]], &|p, s| p.msb_onehot(&s[0], width).map(drop)),
                Cost::pond_msb_onehot(nu, width),
                "msb_onehot of {n} at width {width}"
            );
        }
        for (protocol, input, reveal) in [
            (Protocol::Aby3, Cost::input(nu), Cost::reveal(nu)),
            (Protocol::Pond, Cost::pond_input(nu), Cost::pond_reveal(nu)),
        ] {
            assert_eq!(
                metered_input(protocol, n),
                input,
                "{protocol:?} input of {n}"
            );
            let revealed = metered_once(protocol, &[&[n]], Some(&[n]), &|p, s| {
                reveal_to(p, Role::Client, &s[0])
            });
            assert_eq!(revealed, reveal, "{protocol:?} reveal of {n}");
        }
    }
}

/// A call of the per-op table: its operands' shapes, what becomes of them before the call,
/// the call (the same code under both protocols), and its formula under ABY3 (for a first
/// call: party 1 deals) and under Pond.
struct Row {
    name: &'static str,
    shapes: Vec<Vec<usize>>,
    prepare: Option<Prepare>,
    call: Box<Call<'static>>,
    aby3: Cost,
    pond: Cost,
}

impl Row {
    fn new(
        name: &'static str,
        shapes: Vec<Vec<usize>>,
        call: impl Fn(&mut Party, &[ArithShare]) -> anyhow::Result<()> + Sync + 'static,
        aby3: Cost,
        pond: Cost,
    ) -> Row {
        Row {
            name,
            shapes,
            prepare: None,
            call: Box::new(call),
            aby3,
            pond,
        }
    }
}

/// The dealer of an ABY3 table row's calls (each the first of its kind), and Pond's.
const TABLE_DEALERS: [usize; 2] = [1, 2];

/// A table row's cells for one protocol: rounds, then what the dealer, A and B send (under
/// Pond: the producer, server 0 and server 1), then all of it.
fn cells(c: Cost, dealer: usize) -> String {
    let by_role = [0, 1, 2].map(|k| human_bytes(8 * c.sent[(dealer + k) % 3]));
    format!(
        "{} | {} | {}",
        c.rounds,
        by_role.join(" | "),
        human_bytes(c.bytes())
    )
}

/// docs/PERFORMANCE.md's per-op table ("Protocols side by side"): each call at the default
/// fixed point (f = 16, comparisons of 48 bits, the normalisation's one-hot over 62 - f = 46
/// bit positions), metered under both protocols party by party, checked against its
/// formula, and printed with what each role sends.
///
///     cargo test --release --test protocol -- --ignored --nocapture per_op_table
#[test]
#[ignore = "prints the per-op table of docs/PERFORMANCE.md; minutes outside --release"]
fn per_op_table() {
    let (n, f, width) = (4096u64, 16u32, 48u32);
    let (rows, inner, cols) = (64usize, 256usize, 256usize);
    let out = (rows * cols) as u64;
    let d = TABLE_DEALERS[0];
    let product_then: fn(&mut Party, &[ArithShare], RingMap) -> anyhow::Result<ArrayD<u64>> =
        |p, s, map| p.secret_products(&[(Factor::Share(&s[0]), Factor::Share(&s[1]))], map);
    let masked = Row {
        prepare: Some(|p, s| match p.protocol() {
            Protocol::Aby3 => Ok(s),
            Protocol::Pond => {
                let w = p.mask_for_session(&[&s[1]])?.remove(0);
                Ok(vec![s[0].clone(), p.session_masked(&w)])
            }
        }),
        ..Row::new(
            "matmul [64x256] x [256x256], secret weights masked for the session, + truncation",
            vec![vec![rows, inner], vec![inner, cols]],
            move |p, s| {
                let w = match p.protocol() {
                    Protocol::Aby3 => Factor::Share(&s[1]),
                    Protocol::Pond => Factor::Masked(&s[1]),
                };
                let term = p.secret_products(&[(Factor::Share(&s[0]), w)], &matrix)?;
                p.truncate(&term, f).map(drop)
            },
            Cost::truncate(out, f, d),
            Cost::pond_products((rows * inner) as u64, out) + Cost::pond_truncate(out, f),
        )
    };
    let calls = vec![
        Row::new(
            "product of two secrets, element-wise (ABY3 reshare, Pond Beaver)",
            vec![vec![4096], vec![4096]],
            move |p, s| {
                let term = product_then(p, s, &elementwise)?;
                p.reshare(&term).map(drop)
            },
            Cost::reshare(n),
            Cost::pond_products(2 * n, n),
        ),
        Row::new(
            "product of two secrets, element-wise, + truncation",
            vec![vec![4096], vec![4096]],
            move |p, s| {
                let term = product_then(p, s, &elementwise)?;
                p.truncate(&term, f).map(drop)
            },
            Cost::truncate(n, f, d),
            Cost::pond_products(2 * n, n) + Cost::pond_truncate(n, f),
        ),
        Row::new(
            "matmul [64x256] x [256x256], secret weights opened per call, + truncation",
            vec![vec![rows, inner], vec![inner, cols]],
            move |p, s| {
                let term = product_then(p, s, &matrix)?;
                p.truncate(&term, f).map(drop)
            },
            Cost::truncate(out, f, d),
            Cost::pond_products((rows * inner + inner * cols) as u64, out)
                + Cost::pond_truncate(out, f),
        ),
        masked,
        Row::new(
            "matmul [64x256] x [256x256], public weights, + truncation",
            vec![vec![rows, inner]],
            move |p, s| {
                let weights = filler(&[inner, cols]);
                let term = matrix(&s[0].cur, &weights)?;
                p.truncate(&term, f).map(drop)
            },
            Cost::truncate(out, f, d),
            Cost::pond_truncate(out, f),
        ),
        Row::new(
            "truncation alone",
            vec![vec![4096]],
            move |p, s| p.truncate(&s[0].cur, f).map(drop),
            Cost::truncate(n, f, d),
            Cost::pond_truncate(n, f),
        ),
        Row::new(
            "ReLU (a gate, 1 gated value)",
            vec![vec![4096]],
            move |p, s| p.relu(&s[0], width).map(drop),
            Cost::gate(n, width, 1, d),
            Cost::pond_gate(n, width, 1),
        ),
        Row::new(
            "truncation then ReLU (ABY3 fuses them)",
            vec![vec![4096]],
            move |p, s| match p.protocol() {
                Protocol::Aby3 => {
                    let pending = p.truncate_open(&s[0].cur, f)?;
                    p.relu_pending(&pending, width).map(drop)
                }
                Protocol::Pond => {
                    let x = p.truncate(&s[0].cur, f)?;
                    p.relu(&x, width).map(drop)
                }
            },
            Cost::truncate_open(n, f, d) + Cost::relu_pending(n, width, d),
            Cost::pond_truncate(n, f) + Cost::pond_gate(n, width, 1),
        ),
        Row::new(
            "msb_onehot, width 46 (the normalisation's at f = 16)",
            vec![vec![4096]],
            move |p, s| p.msb_onehot(&s[0], 46).map(drop),
            Cost::msb_onehot(n, 46, d),
            Cost::pond_msb_onehot(n, 46),
        ),
        Row::new(
            "reveal to the client",
            vec![vec![4096]],
            move |p, s| reveal_to(p, Role::Client, &s[0]),
            Cost::reveal(n),
            Cost::pond_reveal(n),
        ),
    ];
    println!(
        "n = {n} values, f = {f}, comparison width {width}; bytes each role sends, rounds on the critical path. ABY3's dealer of truncations and comparisons rotates per call (A is the party after it, B the one after that: the comparison's reader and masker); Pond's is always the producer, with server 0 as A and server 1 as B.\n"
    );
    println!(
        "| call | ABY3 rounds | ABY3 dealer | ABY3 A | ABY3 B | ABY3 all | Pond rounds | Pond producer | Pond server 0 | Pond server 1 | Pond all | Pond / ABY3 bytes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let ratio =
        |pond: Cost, aby3: Cost| format!("{:.2}", pond.words() as f64 / aby3.words() as f64);
    let input = (
        metered_input(Protocol::Aby3, 4096),
        metered_input(Protocol::Pond, 4096),
    );
    assert_eq!(
        input,
        (Cost::input(n), Cost::pond_input(n)),
        "input sharing"
    );
    println!(
        "| input sharing (the client sends all: to parties 1 and 2, to server 1) | 0 | – | – | – | {} | 0 | – | – | – | {} | {} |",
        human_bytes(input.0.bytes()),
        human_bytes(input.1.bytes()),
        ratio(input.1, input.0)
    );
    for row in &calls {
        let (name, call) = (row.name, &row.call);
        let shapes: Vec<&[usize]> = row.shapes.iter().map(Vec::as_slice).collect();
        let revealed = name.starts_with("reveal").then_some(shapes[0]);
        let [aby3, pond] = [Protocol::Aby3, Protocol::Pond]
            .map(|p| metered_calls(p, &shapes, revealed, row.prepare, 1, call).remove(0));
        assert_eq!(
            (aby3, pond),
            (row.aby3, row.pond),
            "{name}: metered vs formulas"
        );
        let [a, p] = TABLE_DEALERS;
        println!(
            "| {name} | {} | {} | {} |",
            cells(aby3, a),
            cells(pond, p),
            ratio(pond, aby3)
        );
    }
}
