//! The distance kernels the HNSW walk calls for every node it visits.
//!
//! usearch's portable kernels (built without its SIMD library, which would
//! more than double the package) sum into one 4-wide accumulator, so each
//! step waits for the last: 45 % of a search's time went there. These keep
//! several accumulators in flight, and on x86_64 use AVX2 with FMA when the
//! CPU has them (checked once, at run time). The walk only ranks with them:
//! the scores a search returns are computed exactly from the stored records.

/// A distance between two vectors of the same length: lower is nearer.
pub(crate) type Kernel = fn(&[f32], &[f32]) -> f32;

/// `1 - a·b`: the inner-product distance (cosine walks it over unit vectors).
pub(crate) fn ip_distance() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        return |a, b| 1.0 - unsafe { x86::dot(a, b) };
    }
    |a, b| 1.0 - dot(a, b)
}

/// `|a - b|²`: the squared Euclidean distance.
pub(crate) fn l2sq_distance() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        return |a, b| unsafe { x86::l2sq(a, b) };
    }
    l2sq
}

/// Lanes summed independently: wide enough for the compiler to keep two or
/// more vector registers of partial sums on any target.
const LANES: usize = 16;

/// `a·b` in portable code the compiler vectorizes.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let whole = n - n % LANES;
    for (x, y) in a[..whole].chunks_exact(LANES).zip(b[..whole].chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in whole..n {
        sum += a[i] * b[i];
    }
    sum
}

/// `|a - b|²` in portable code the compiler vectorizes.
pub(crate) fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let whole = n - n % LANES;
    for (x, y) in a[..whole].chunks_exact(LANES).zip(b[..whole].chunks_exact(LANES)) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in whole..n {
        let d = a[i] - b[i];
        sum += d * d;
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// The sum of the eight lanes.
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps::<1>(v);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<0x55>(s, s));
        _mm_cvtss_f32(s)
    }

    /// `a·b` with four 8-wide accumulators.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads): every index read is below `n`, the length of both slices.
        while i + 32 <= n {
            for (j, acc) in s.iter_mut().enumerate() {
                let at = i + 8 * j;
                *acc = _mm256_fmadd_ps(unsafe { _mm256_loadu_ps(pa.add(at)) }, unsafe { _mm256_loadu_ps(pb.add(at)) }, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            s[0] = _mm256_fmadd_ps(unsafe { _mm256_loadu_ps(pa.add(i)) }, unsafe { _mm256_loadu_ps(pb.add(i)) }, s[0]);
            i += 8;
        }
        let mut sum = hsum(_mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3])));
        while i < n {
            sum += a[i] * b[i];
            i += 1;
        }
        sum
    }

    /// `|a - b|²` with four 8-wide accumulators.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn l2sq(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads): every index read is below `n`, the length of both slices.
        while i + 32 <= n {
            for (j, acc) in s.iter_mut().enumerate() {
                let at = i + 8 * j;
                let d = _mm256_sub_ps(unsafe { _mm256_loadu_ps(pa.add(at)) }, unsafe { _mm256_loadu_ps(pb.add(at)) });
                *acc = _mm256_fmadd_ps(d, d, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            let d = _mm256_sub_ps(unsafe { _mm256_loadu_ps(pa.add(i)) }, unsafe { _mm256_loadu_ps(pb.add(i)) });
            s[0] = _mm256_fmadd_ps(d, d, s[0]);
            i += 8;
        }
        let mut sum = hsum(_mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3])));
        while i < n {
            let d = a[i] - b[i];
            sum += d * d;
            i += 1;
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }
    fn exact_l2sq(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum()
    }

    /// Every length from 0 to 100 (each tail and chunk boundary) and the
    /// common model sizes, through the kernel this CPU picks and the portable one.
    #[test]
    fn kernels_agree_with_f64_sums() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let (ip, l2) = (ip_distance(), l2sq_distance());
        for n in (0..=100).chain([384, 768, 1536]) {
            let a: Vec<f32> = (0..n).map(|_| next()).collect();
            let b: Vec<f32> = (0..n).map(|_| next()).collect();
            let (d, e) = (exact_dot(&a, &b), exact_l2sq(&a, &b));
            let tol = 1e-4 * (1.0 + n as f64);
            assert!((dot(&a, &b) as f64 - d).abs() < tol, "portable dot, n={n}");
            assert!((l2sq(&a, &b) as f64 - e).abs() < tol, "portable l2sq, n={n}");
            assert!(((1.0 - ip(&a, &b)) as f64 - d).abs() < tol, "dispatched dot, n={n}: {} vs {d}", 1.0 - ip(&a, &b));
            assert!((l2(&a, &b) as f64 - e).abs() < tol, "dispatched l2sq, n={n}");
        }
    }
}
