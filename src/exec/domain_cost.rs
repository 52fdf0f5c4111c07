//! A protocol's cost of a plan without running it: the interpreter walks the plan as it
//! would in mpc, and each secure primitive adds its closed-form [`Cost`] under the protocol. The
//! values are zeros of the right shapes (the protocol never branches on data), tagged
//! public or secret because the mpc domain computes on public values locally.

use super::approx::{self, Ring};
use super::domain_mpc::{ProductRoute, masked_map};
use super::maps::{AddMap, MaskMap};
use super::{Bilinear, Domain, Linear};
use crate::mpc::Protocol;
use crate::mpc::cost::Cost;
use crate::mpc::party::Dealing;
use crate::net::Stats;
use crate::plan::Function;
use crate::tensor::FixedPoint;
use anyhow::Result;
use ndarray::{ArrayD, IxDyn};

#[derive(Clone, Debug)]
pub struct Costed {
    pub zeros: ArrayD<u64>,
    pub secret: bool,
    /// The dealer of a truncation left pending, as in the mpc domain.
    pub pending: Option<usize>,
    /// Masked once for the session, as Pond's weights are in the mpc domain.
    pub masked: bool,
}

impl Costed {
    pub fn new(zeros: ArrayD<u64>, secret: bool) -> Costed {
        Costed {
            zeros,
            secret,
            pending: None,
            masked: false,
        }
    }
}

pub struct CostDomain {
    pub fixed: FixedPoint,
    pub protocol: Protocol,
    pub total: Cost,
    /// Calls of each dealer-assisted protocol so far, by [`Dealing`]: their dealer rotates
    /// as the parties' does ([`crate::mpc::Party`]'s `next_dealer`).
    pub dealt: [u64; 2],
    pub defer: bool,
}

impl CostDomain {
    pub fn new(fixed: FixedPoint, protocol: Protocol) -> CostDomain {
        CostDomain {
            fixed,
            protocol,
            total: Cost::FREE,
            dealt: [0; 2],
            defer: false,
        }
    }

    /// The dealer of the next call of `protocol` under ABY3.
    fn next_dealer(&mut self, protocol: Dealing) -> usize {
        let count = &mut self.dealt[protocol as usize];
        *count += 1;
        (*count % 3) as usize
    }

    fn secret(&self, zeros: ArrayD<u64>) -> Costed {
        Costed::new(zeros, true)
    }

    /// What [`super::MpcDomain::settled`] costs.
    fn settle(&mut self, value: &Costed) -> Costed {
        if let Some(dealer) = value.pending {
            self.total += Cost::settle(value.zeros.len() as u64, dealer);
        }
        Costed::new(value.zeros.clone(), value.secret)
    }
}

impl Domain for CostDomain {
    type Value = Costed;

    fn shape(value: &Costed) -> Vec<usize> {
        value.zeros.shape().to_vec()
    }

    fn constant(&mut self, c: &ArrayD<f32>) -> Result<Costed> {
        Ok(Costed::new(ArrayD::zeros(c.raw_dim()), false))
    }

    fn linear<L: Linear>(&mut self, map: &L, xs: &[&Costed]) -> Result<Costed> {
        // Pending on the first pending operand's dealer; others pending on another settle.
        let pending = xs.iter().find_map(|x| x.pending);
        for x in xs {
            if x.pending.is_some() && x.pending != pending {
                self.settle(x);
            }
        }
        let zeros: Vec<&ArrayD<u64>> = xs.iter().map(|x| &x.zeros).collect();
        Ok(Costed {
            zeros: map.apply_to(&zeros)?,
            secret: xs.iter().any(|x| x.secret),
            pending,
            masked: masked_map(xs.iter().map(|x| (x.secret, x.masked))),
        })
    }

    fn bilinear<B: Bilinear>(&mut self, map: &B, x: &Costed, y: &Costed) -> Result<Costed> {
        self.products_shift(map, &[(x, y)], None, self.fixed.frac_bits)
    }

    fn gate(&mut self, x: &Costed, ys: &[&Costed]) -> Result<Vec<Costed>> {
        if let (Some(dealer), [y]) = (x.pending, ys)
            && std::ptr::eq(x, *y)
        {
            let width = self.fixed.comparison_bits();
            self.total += Cost::relu_pending(x.zeros.len() as u64, width, dealer);
            return Ok(vec![self.secret(x.zeros.clone())]);
        }
        let x = &self.settle(x);
        let ys: Vec<Costed> = ys.iter().map(|y| self.settle(y)).collect();
        let ys: Vec<&Costed> = ys.iter().collect();
        if !x.secret {
            let keep = x.zeros.clone();
            return ys
                .iter()
                .map(|y| self.linear(&MaskMap { mask: &keep }, &[y]))
                .collect();
        }
        let (n, width, gated) = (
            x.zeros.len() as u64,
            self.fixed.comparison_bits(),
            ys.len() as u64,
        );
        let cost = match self.protocol {
            Protocol::Aby3 => Cost::gate(n, width, gated, self.next_dealer(Dealing::Comparison)),
            Protocol::Pond => Cost::pond_gate(n, width, gated),
        };
        self.total += cost;
        Ok(vec![self.secret(x.zeros.clone()); ys.len()])
    }

    fn function(&mut self, f: Function, x: &Costed) -> Result<Costed> {
        let x = self.settle(x);
        approx::evaluate(self, f, &x)
    }

    fn defer(&mut self, on: bool) {
        self.defer = on && self.protocol == Protocol::Aby3;
    }

    fn stats(&self) -> Stats {
        Stats {
            bytes_sent: self.total.bytes(),
            messages_sent: 0,
            rounds: self.total.rounds,
        }
    }
}

impl Ring for CostDomain {
    fn frac_bits(&self) -> u32 {
        self.fixed.frac_bits
    }

    fn ring_scalar(&mut self, _: u64) -> Result<Costed> {
        Ok(Costed::new(ArrayD::zeros(IxDyn(&[])), false))
    }

    /// A sum of products costs what the mpc domain's [`ProductRoute`] for its operands
    /// costs, on the elements of the sum.
    fn products_shift<B: Bilinear>(
        &mut self,
        map: &B,
        pairs: &[(&Costed, &Costed)],
        addend: Option<&Costed>,
        shift: u32,
    ) -> Result<Costed> {
        for (x, y) in pairs {
            self.settle(x);
            self.settle(y);
        }
        if let Some(a) = addend {
            self.settle(a);
        }
        let mut zeros: Option<ArrayD<u64>> = addend.map(|a| a.zeros.clone());
        for (x, y) in pairs {
            let product = map.apply(&x.zeros.view(), &y.zeros.view())?;
            zeros = Some(match zeros {
                None => product,
                Some(acc) => AddMap.apply_to(&[&acc, &product])?,
            });
        }
        let zeros = zeros.ok_or_else(|| anyhow::anyhow!("a sum of no products"))?;
        let secrets: Vec<(bool, bool)> = pairs.iter().map(|(x, y)| (x.secret, y.secret)).collect();
        let addend_secret = addend.is_some_and(|a| a.secret);
        let n = zeros.len() as u64;
        let mut pending = None;
        let route = ProductRoute::of(&secrets, addend_secret, shift);
        if self.protocol == Protocol::Pond {
            // Beaver products open the factors not masked for the session.
            let opened = |x: &Costed| if x.masked { 0 } else { x.zeros.len() };
            let secret_pairs = pairs.iter().filter(|(x, y)| x.secret && y.secret);
            if secret_pairs.clone().next().is_some() {
                let operands: usize = secret_pairs.map(|(x, y)| opened(x) + opened(y)).sum();
                self.total += Cost::pond_products(operands as u64, n);
            }
            if route == ProductRoute::Truncate {
                self.total += Cost::pond_truncate(n, shift);
            }
        } else {
            let cost = self.aby3_products(route, n, shift, &mut pending);
            self.total += cost;
        }
        // A product with a public value keeps a masked factor masked; the mpc domain sums
        // such parts (and a settled addend) with a linear map.
        let parts = pairs.iter().filter(|(x, y)| x.secret || y.secret);
        let parts = parts.map(|(x, y)| (true, x.masked || y.masked));
        let masked = route == ProductRoute::Local
            && masked_map(parts.chain(addend.map(|a| (a.secret, false))));
        Ok(Costed {
            zeros,
            secret: addend_secret || secrets.iter().any(|&(x, y)| x || y),
            pending,
            masked,
        })
    }

    fn msb_onehot(&mut self, x: &Costed, width: u32) -> Result<Costed> {
        let x = &self.settle(x);
        let mut shape = vec![width as usize];
        shape.extend_from_slice(x.zeros.shape());
        if x.secret {
            let n = x.zeros.len() as u64;
            let cost = match self.protocol {
                Protocol::Aby3 => Cost::msb_onehot(n, width, self.next_dealer(Dealing::Comparison)),
                Protocol::Pond => Cost::pond_msb_onehot(n, width),
            };
            self.total += cost;
        }
        Ok(Costed::new(ArrayD::zeros(IxDyn(&shape)), x.secret))
    }
}

impl CostDomain {
    /// What ABY3 spends on a sum of products of `n` elements taking `route`; a truncation
    /// left pending records its dealer in `pending`.
    fn aby3_products(
        &mut self,
        route: ProductRoute,
        n: u64,
        shift: u32,
        pending: &mut Option<usize>,
    ) -> Cost {
        match route {
            ProductRoute::Local => Cost::FREE,
            ProductRoute::Reshare => Cost::reshare(n),
            ProductRoute::Truncate => {
                let dealer = self.next_dealer(Dealing::Truncation);
                if self.defer {
                    *pending = Some(dealer);
                    Cost::truncate_open(n, shift, dealer)
                } else {
                    Cost::truncate(n, shift, dealer)
                }
            }
        }
    }
}
