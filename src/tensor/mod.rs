//! Tensors over f32 and Z_2^64: the element trait, fixed-point encoding and the kernels every
//! interpreter shares (matrix product, convolution, windows, broadcasting, data movement).

pub mod broadcast;
pub mod conv;
mod elem;
pub mod fixed;
mod gemm64;
pub mod layout;
pub mod matmul;
pub mod movement;
pub mod window;

pub use elem::Elem;
pub use fixed::FixedPoint;
pub use gemm64::gemm_path;
pub use window::Window;
