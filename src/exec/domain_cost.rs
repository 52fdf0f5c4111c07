//! The protocol's cost of a plan without running the protocol: the interpreter walks the
//! plan as it would in mpc, and each secure primitive adds its closed-form [`Cost`]. The
//! values are zeros of the right shapes (the protocol never branches on data), tagged
//! public or secret because the mpc domain computes on public values locally.

use super::approx::{self, Ring};
use super::domain_mpc::ProductRoute;
use super::maps::{AddMap, MaskMap};
use super::{Bilinear, Domain, Linear};
use crate::mpc::cost::Cost;
use crate::net::Stats;
use crate::plan::Function;
use crate::tensor::FixedPoint;
use anyhow::Result;
use ndarray::{ArrayD, IxDyn};

#[derive(Clone, Debug)]
pub struct Costed {
    pub zeros: ArrayD<u64>,
    pub secret: bool,
}

pub struct CostDomain {
    pub fixed: FixedPoint,
    pub total: Cost,
}

impl CostDomain {
    fn secret(&self, zeros: ArrayD<u64>) -> Costed {
        Costed {
            zeros,
            secret: true,
        }
    }

    /// A sum of products costs what the mpc domain's [`ProductRoute`] for its operands
    /// costs, on the elements of the sum.
    fn products<B: Bilinear>(
        &mut self,
        map: &B,
        pairs: &[(&Costed, &Costed)],
        addend: Option<&Costed>,
        shift: u32,
    ) -> Result<Costed> {
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
        self.total += match ProductRoute::of(&secrets, addend_secret, shift) {
            ProductRoute::Local => Cost::FREE,
            ProductRoute::Reshare => Cost::reshare(n),
            ProductRoute::Truncate => Cost::truncate(n),
        };
        Ok(Costed {
            zeros,
            secret: addend_secret || secrets.iter().any(|&(x, y)| x || y),
        })
    }
}

impl Domain for CostDomain {
    type Value = Costed;

    fn shape(value: &Costed) -> Vec<usize> {
        value.zeros.shape().to_vec()
    }

    fn constant(&mut self, c: &ArrayD<f32>) -> Result<Costed> {
        Ok(Costed {
            zeros: ArrayD::zeros(c.raw_dim()),
            secret: false,
        })
    }

    fn linear<L: Linear>(&mut self, map: &L, xs: &[&Costed]) -> Result<Costed> {
        let zeros: Vec<&ArrayD<u64>> = xs.iter().map(|x| &x.zeros).collect();
        Ok(Costed {
            zeros: map.apply_to(&zeros)?,
            secret: xs.iter().any(|x| x.secret),
        })
    }

    fn bilinear<B: Bilinear>(&mut self, map: &B, x: &Costed, y: &Costed) -> Result<Costed> {
        self.products(map, &[(x, y)], None, self.fixed.frac_bits)
    }

    fn gate(&mut self, x: &Costed, ys: &[&Costed]) -> Result<Vec<Costed>> {
        if !x.secret {
            let keep = x.zeros.clone();
            return ys
                .iter()
                .map(|y| self.linear(&MaskMap { mask: &keep }, &[y]))
                .collect();
        }
        self.total += Cost::gate(
            x.zeros.len() as u64,
            self.fixed.comparison_bits(),
            ys.len() as u64,
        );
        Ok(vec![self.secret(x.zeros.clone()); ys.len()])
    }

    fn function(&mut self, f: Function, x: &Costed) -> Result<Costed> {
        approx::evaluate(self, f, x)
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
        Ok(Costed {
            zeros: ArrayD::zeros(IxDyn(&[])),
            secret: false,
        })
    }

    fn products_shift<B: Bilinear>(
        &mut self,
        map: &B,
        pairs: &[(&Costed, &Costed)],
        addend: Option<&Costed>,
        shift: u32,
    ) -> Result<Costed> {
        self.products(map, pairs, addend, shift)
    }

    fn msb_onehot(&mut self, x: &Costed, width: u32) -> Result<Costed> {
        let mut shape = vec![width as usize];
        shape.extend_from_slice(x.zeros.shape());
        if x.secret {
            self.total += Cost::msb_onehot(x.zeros.len() as u64, width);
        }
        Ok(Costed {
            zeros: ArrayD::zeros(IxDyn(&shape)),
            secret: x.secret,
        })
    }
}
