//! Shapes whose dimensions may scale with the batch size, so that one plan serves every batch.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One dimension: a fixed size, or `k * N` for batch size `N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Fixed(usize),
    Batch(usize),
}

impl Dim {
    pub fn resolve(self, batch: usize) -> usize {
        match self {
            Dim::Fixed(n) => n,
            Dim::Batch(k) => k * batch,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Batch(1) => write!(f, "N"),
            Dim::Batch(k) => write!(f, "N*{k}"),
        }
    }
}

/// In the plan file a dimension is a number, `"N"` or `"N*k"`.
impl Serialize for Dim {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Dim::Fixed(n) => s.serialize_u64(*n as u64),
            batch => s.serialize_str(&batch.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Dim {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Fixed(u64),
            Symbolic(String),
        }
        match Repr::deserialize(d)? {
            Repr::Fixed(n) => Ok(Dim::Fixed(n as usize)),
            Repr::Symbolic(s) => match s.as_str() {
                "N" => Ok(Dim::Batch(1)),
                other => other
                    .strip_prefix("N*")
                    .and_then(|k| k.parse().ok())
                    .map(Dim::Batch)
                    .ok_or_else(|| serde::de::Error::custom(format!("bad dimension {other:?}"))),
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    pub fn fixed_dims(dims: &[usize]) -> Shape {
        Shape(dims.iter().map(|&d| Dim::Fixed(d)).collect())
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    pub fn resolve(&self, batch: usize) -> Vec<usize> {
        self.0.iter().map(|d| d.resolve(batch)).collect()
    }

    /// The concrete shape at `batch` and its number of elements, or `None` when either
    /// overflows: what code that allocates from a batch it was sent must use.
    pub fn checked_resolve(&self, batch: usize) -> Option<(Vec<usize>, usize)> {
        let dims = (self.0.iter())
            .map(|d| match *d {
                Dim::Fixed(n) => Some(n),
                Dim::Batch(k) => k.checked_mul(batch),
            })
            .collect::<Option<Vec<usize>>>()?;
        let len = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
        Some((dims, len))
    }

    pub fn has_batch(&self) -> bool {
        self.0.iter().any(|d| matches!(d, Dim::Batch(_)))
    }

    /// The concrete shape when no dimension depends on the batch.
    pub fn fixed(&self) -> Option<Vec<usize>> {
        (!self.has_batch()).then(|| self.resolve(0))
    }

    /// The numpy broadcast of two shapes, or `None` when they do not broadcast. A
    /// batch-dependent size broadcasts like any other size: with 1, or with itself.
    pub fn broadcast(&self, other: &Shape) -> Option<Shape> {
        let rank = self.rank().max(other.rank());
        let dim = |s: &Shape, i: usize| {
            if i + s.rank() >= rank {
                s.0[i + s.rank() - rank]
            } else {
                Dim::Fixed(1)
            }
        };
        (0..rank)
            .map(|i| match (dim(self, i), dim(other, i)) {
                (a, b) if a == b => Some(a),
                (Dim::Fixed(1), b) => Some(b),
                (a, Dim::Fixed(1)) => Some(a),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(Shape)
    }

    /// The batch size that gives `concrete`, if any (any batch works for a fixed shape).
    pub fn batch_for(&self, concrete: &[usize]) -> Option<usize> {
        if concrete.len() != self.rank() {
            return None;
        }
        let mut batch = None;
        for (d, &c) in self.0.iter().zip(concrete) {
            match *d {
                Dim::Fixed(n) if n != c => return None,
                Dim::Batch(k) if k == 0 || c % k != 0 || batch.is_some_and(|b| b != c / k) => {
                    return None;
                }
                Dim::Batch(k) => batch = Some(c / k),
                _ => {}
            }
        }
        Some(batch.unwrap_or(1))
    }
}

impl Shape {
    /// The shape after reducing `axes`, kept as size 1 or dropped.
    pub fn reduced(&self, axes: &[usize], keep_dims: bool) -> Shape {
        Shape(
            self.0
                .iter()
                .enumerate()
                .filter_map(|(a, &d)| {
                    if axes.contains(&a) {
                        keep_dims.then_some(Dim::Fixed(1))
                    } else {
                        Some(d)
                    }
                })
                .collect(),
        )
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_resolution_refuses_what_overflows() {
        let s = Shape(vec![Dim::Batch(4), Dim::Fixed(1 << 30)]);
        assert_eq!(s.checked_resolve(3), Some((vec![12, 1 << 30], 12 << 30)));
        // 2^38 rows of 2^30 elements: the product overflows, not a dimension.
        assert_eq!(s.checked_resolve(1 << 36), None);
        assert_eq!(Shape(vec![Dim::Batch(2)]).checked_resolve(usize::MAX), None);
    }

    #[test]
    fn batch_dims_resolve_and_round_trip() {
        let s = Shape(vec![Dim::Batch(1), Dim::Fixed(3), Dim::Batch(4)]);
        assert_eq!(s.resolve(2), vec![2, 3, 8]);
        assert_eq!(s.to_string(), "[N, 3, N*4]");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"["N",3,"N*4"]"#);
        assert_eq!(serde_json::from_str::<Shape>(&json).unwrap(), s);
        assert_eq!(s.batch_for(&[5, 3, 20]), Some(5));
        assert_eq!(s.batch_for(&[5, 3, 21]), None);
        assert_eq!(s.batch_for(&[5, 3, 24]), None);
        assert_eq!(Shape::fixed_dims(&[2, 2]).batch_for(&[2, 2]), Some(1));
    }

    #[test]
    fn broadcasts_with_batch_dims() {
        let x = Shape(vec![Dim::Batch(1), Dim::Fixed(1), Dim::Fixed(4)]);
        let c = Shape::fixed_dims(&[3, 1]);
        assert_eq!(
            x.broadcast(&c),
            Some(Shape(vec![Dim::Batch(1), Dim::Fixed(3), Dim::Fixed(4)]))
        );
        assert_eq!(x.broadcast(&Shape::fixed_dims(&[2, 1, 1])), None);
    }
}
