//! A skewed request trace and the hit ratio exact LRU gets on it: the
//! reference the eviction policy must beat (used by the tests and the
//! benchmark).

use std::collections::{HashMap, VecDeque};

/// A Zipf(1) trace over `n` objects: rank r drawn with weight 1/r.
pub fn zipf_trace(n: usize, len: usize) -> Vec<usize> {
    let cdf: Vec<f64> = (1..=n)
        .scan(0.0, |acc, r| {
            *acc += 1.0 / r as f64;
            Some(*acc)
        })
        .collect();
    let total = cdf[n - 1];
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    // Ranks are scattered over object ids so "hot" is not "inserted first".
    let ids: Vec<usize> = (0..n).map(|r| (r * 7919) % n).collect();
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64 * total;
            ids[cdf.partition_point(|&c| c < u).min(n - 1)]
        })
        .collect()
}

/// Exact LRU of `capacity` objects (a reference, not a cache).
pub fn lru_hit_ratio(trace: &[usize], capacity: usize) -> f64 {
    let mut last_use: HashMap<usize, u64> = HashMap::new();
    let mut order: VecDeque<(usize, u64)> = VecDeque::new();
    let mut hits = 0;
    for (t, &i) in trace.iter().enumerate() {
        let t = t as u64;
        if last_use.contains_key(&i) {
            hits += 1;
        }
        last_use.insert(i, t);
        order.push_back((i, t));
        while last_use.len() > capacity {
            let (old, when) = order.pop_front().unwrap();
            if last_use.get(&old) == Some(&when) {
                last_use.remove(&old);
            }
        }
    }
    hits as f64 / trace.len() as f64
}
