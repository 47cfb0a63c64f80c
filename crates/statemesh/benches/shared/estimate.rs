//! Reading criterion's results back, for the benchmarks' summary tables.

use std::path::{Path, PathBuf};

/// Criterion's estimate for one benchmark (the slope for linear sampling,
/// else the mean, as criterion prints it): point, lower, upper, in ns.
pub(crate) fn estimate(id: &str) -> Option<(f64, f64, f64)> {
    let home = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("criterion"))
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion"));
    let text = std::fs::read_to_string(home.join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let e = if v["slope"].is_object() {
        &v["slope"]
    } else {
        &v["mean"]
    };
    let ci = &e["confidence_interval"];
    Some((
        e["point_estimate"].as_f64()?,
        ci["lower_bound"].as_f64()?,
        ci["upper_bound"].as_f64()?,
    ))
}
