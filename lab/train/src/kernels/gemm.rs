//! Matrix products through the `gemm` crate on strided views: one thread into a caller's
//! buffer ([`matmul`], for kernels that parallelise over blocks themselves), or over the pool
//! into fresh memory ([`product`], the model's projections).
//!
//! Why not burn-flex's matmul for the projections: it zero-fills its output (`vec![0u8; n]`)
//! and then copies it into an aligned buffer, both on the calling thread, before the threaded
//! gemm overwrites every element. At d256-l6 on 2 threads that was about 5 % of a step, all of
//! it serial. [`product`] makes the same gemm call (same strides, same parallelism), so its
//! results are bit-identical to burn-flex's.

use std::ops::Range;

use gemm::{gemm, Parallelism};

/// A matrix read through strides: a row-major `[rows, cols]` slice, or a transposed view.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "a [{rows}, {cols}] matrix");
        Mat { data, rows, cols, row_stride: cols, col_stride: 1 }
    }
    pub fn t(self) -> Self {
        Mat { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }
    /// Rows `r` of the matrix as it reads.
    pub fn rows(self, r: Range<usize>) -> Self {
        Mat { data: &self.data[r.start * self.row_stride..], rows: r.len(), ..self }
    }
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

/// The path the CPU's matrix products take, as provenance records it (`x86_64 avx512f; caches
/// 48K/2048K/107520K`): the instruction set `gemm` picks at run time (the checks of
/// gemm-common's `init_gemm_fn`, in its order) and the cache sizes it sizes its blocks by. Both
/// decide the order a product's terms are added in (the microkernel's width, and where the
/// inner dimension is cut into blocks), so two machines that agree here compute the same bits
/// and two that differ round differently. The model's own kernels ([`super::cpu`]) fix their
/// lane order and give the same bits on every path.
pub fn simd_path() -> String {
    let caches: Vec<String> =
        gemm_common::cache::CACHE_INFO.iter().map(|c| format!("{}K", c.cache_bytes / 1024)).collect();
    format!("{} {}; caches {}", std::env::consts::ARCH, instruction_set(), caches.join("/"))
}

#[cfg(target_arch = "x86_64")]
fn instruction_set() -> &'static str {
    if std::arch::is_x86_feature_detected!("avx512f") {
        "avx512f"
    } else if std::arch::is_x86_feature_detected!("fma") {
        "fma"
    } else {
        "scalar"
    }
}

#[cfg(target_arch = "aarch64")]
fn instruction_set() -> &'static str {
    if std::arch::is_aarch64_feature_detected!("neon") {
        "neon"
    } else {
        "scalar"
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn instruction_set() -> &'static str {
    "scalar"
}

/// `dst = a·b`, or `dst += a·b` with `accumulate`; `dst` is row-major `[a.rows, b.cols]`. One
/// thread: the callers parallelise over blocks.
pub fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    assert!(a.cols == b.rows && dst.len() == a.rows * b.cols && a.fits() && b.fits(), "matmul shapes");
    // SAFETY: the asserts keep every element gemm reads or writes inside its slice.
    unsafe { call(dst.as_mut_ptr(), a, b, accumulate, Parallelism::None) }
}

/// Below this many multiply-adds a product runs on the calling thread (burn-flex's threshold:
/// the same split keeps the same results and the same speed on small products).
const PARALLEL_OPS: usize = 192 * 192 * 192;

/// `a·b`, row-major `[a.rows, b.cols]`, on the current rayon pool when it is large enough.
/// gemm splits the output into blocks, never the inner dimension, so the result does not
/// depend on the pool's size.
pub fn product(a: Mat, b: Mat) -> Vec<f32> {
    assert!(a.cols == b.rows && a.fits() && b.fits(), "matmul shapes");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if k == 0 {
        return vec![0.0; m * n];
    }
    let parallelism = if m * n * k >= PARALLEL_OPS { Parallelism::Rayon(0) } else { Parallelism::None };
    let mut out = Vec::with_capacity(m * n);
    // SAFETY: the asserts keep every read inside `a` and `b`. Without `accumulate`, gemm
    // writes each of the m·n elements of the destination (k > 0) and reads none of them, so
    // the vector is fully initialised before its length is set.
    unsafe {
        call(out.as_mut_ptr(), a, b, false, parallelism);
        out.set_len(m * n);
    }
    out
}

/// # Safety
/// `dst` must be valid for writes (and, with `accumulate`, reads) of `a.rows · b.cols`
/// row-major elements, and `a`, `b` must fit their slices.
unsafe fn call(dst: *mut f32, a: Mat, b: Mat, accumulate: bool, parallelism: Parallelism) {
    gemm(
        a.rows,
        b.cols,
        a.cols,
        dst,
        1,
        b.cols as isize,
        accumulate,
        a.data.as_ptr(),
        a.col_stride as isize,
        a.row_stride as isize,
        b.data.as_ptr(),
        b.col_stride as isize,
        b.row_stride as isize,
        1.0,
        1.0,
        false,
        false,
        false,
        parallelism,
    );
}
