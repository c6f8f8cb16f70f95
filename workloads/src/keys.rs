//! Key streams shared by the benches and the tuner: precomputed outside any timed loop, seeded,
//! and the same for every contender.

use rand::SeedableRng;
use rand::distr::{Distribution, Uniform};
use rand::rngs::SmallRng;
use rand_distr::Zipf;

/// `len` keys from `0..keys`, Zipf-distributed with exponent `s` (key 0 the most popular), then
/// scattered by a bijective mix so that popular keys are not numerically adjacent.
pub fn zipf(keys: u64, s: f64, len: usize, seed: u64) -> Vec<u64> {
    let zipf = Zipf::new(keys as f64, s).expect("Zipf needs keys >= 1 and s >= 0");
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..len).map(|_| scatter(zipf.sample(&mut rng) as u64 - 1)).collect()
}

/// `len` keys drawn uniformly from `0..keys`.
pub fn uniform(keys: u64, len: usize, seed: u64) -> Vec<u64> {
    let uniform = Uniform::new(0, keys).expect("keys >= 1");
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..len).map(|_| scatter(uniform.sample(&mut rng))).collect()
}

/// A bijection on `u64` (the splitmix64 finaliser): distinct ranks stay distinct keys.
fn scatter(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The first `keys` keys of the space, `0..keys` scattered as in [`uniform`]: the exact set a
/// uniform stream over `keys` keys draws from, to pre-fill a cache with.
pub fn key_set(keys: u64) -> Vec<u64> {
    (0..keys).map(scatter).collect()
}
