//! The serving process's memory over the soak, and whether it stayed flat.
//!
//! Resident set size is read from `/proc/<pid>/status` (`VmRSS`) once a second. The rule, with
//! the first interval taken as warm-up (caches filling, connections opening, the allocator
//! finding its size):
//!
//! - the **reference** is the mean RSS over the interval after the warm-up;
//! - the **end** is the mean RSS over the last third of the run;
//! - memory is flat when the end exceeds the reference by no more than
//!   [`GROWTH_LIMIT_FRACTION`] of the reference or [`GROWTH_LIMIT_MB`], whichever is larger,
//!   **and** the least-squares slope of RSS over everything after the warm-up is at most
//!   [`SLOPE_LIMIT_MB_PER_MINUTE`].
//!
//! The first bound catches a process that ends much larger than it settled at; the second a
//! steady leak too slow to pass the first in ten minutes.

use serde::Serialize;

/// Growth allowed, as a fraction of the reference.
pub const GROWTH_LIMIT_FRACTION: f64 = 0.10;
/// Growth always allowed, in MB (allocator and page-cache noise on a small process).
pub const GROWTH_LIMIT_MB: f64 = 16.0;
/// Steepest slope allowed after the warm-up.
pub const SLOPE_LIMIT_MB_PER_MINUTE: f64 = 1.0;

const MB: f64 = 1024.0 * 1024.0;

/// The resident set size of process `pid` in bytes, if it is running.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

/// One reading: seconds since the load started, RSS in MB.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Reading {
    pub seconds: f64,
    pub rss_mb: f64,
}

impl Reading {
    pub fn new(seconds: f64, bytes: u64) -> Self {
        Reading {
            seconds,
            rss_mb: bytes as f64 / MB,
        }
    }
}

/// The verdict on memory, with the figures it rests on.
#[derive(Debug, Clone, Serialize)]
pub struct Flatness {
    pub rule: String,
    pub warm_up_seconds: f64,
    pub reference_mb: Option<f64>,
    pub last_third_mb: Option<f64>,
    pub growth_mb: Option<f64>,
    pub growth_limit_mb: Option<f64>,
    pub slope_mb_per_minute: Option<f64>,
    pub slope_limit_mb_per_minute: f64,
    pub peak_mb: Option<f64>,
    pub readings: usize,
    /// Both bounds held (false too when there were too few readings to judge).
    pub flat: bool,
}

fn mean(readings: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = readings.fold((0.0, 0usize), |(sum, count), mb| (sum + mb, count + 1));
    (count > 0).then(|| sum / count as f64)
}

/// The least-squares slope of RSS against time, in MB per minute (needs two distinct times).
pub fn slope_mb_per_minute(readings: &[Reading]) -> Option<f64> {
    let n = readings.len() as f64;
    let mean_t = mean(readings.iter().map(|r| r.seconds))?;
    let mean_m = mean(readings.iter().map(|r| r.rss_mb))?;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for reading in readings {
        covariance += (reading.seconds - mean_t) * (reading.rss_mb - mean_m);
        variance += (reading.seconds - mean_t).powi(2);
    }
    (n >= 2.0 && variance > 0.0).then(|| covariance / variance * 60.0)
}

/// Judges `readings` of a run `duration` seconds long whose first `interval` seconds were
/// warm-up.
pub fn judge(readings: &[Reading], interval: f64, duration: f64) -> Flatness {
    let warm_up = interval.min(duration / 3.0);
    let after: Vec<Reading> = readings
        .iter()
        .copied()
        .filter(|r| r.seconds > warm_up)
        .collect();
    let reference = mean(
        after
            .iter()
            .filter(|r| r.seconds <= warm_up + interval)
            .map(|r| r.rss_mb),
    );
    let last_third = mean(
        readings
            .iter()
            .filter(|r| r.seconds >= duration * 2.0 / 3.0)
            .map(|r| r.rss_mb),
    );
    let growth = reference.zip(last_third).map(|(start, end)| end - start);
    let limit = reference.map(|start| (start * GROWTH_LIMIT_FRACTION).max(GROWTH_LIMIT_MB));
    let slope = slope_mb_per_minute(&after);
    let flat = matches!((growth, limit, slope), (Some(growth), Some(limit), Some(slope))
        if growth <= limit && slope <= SLOPE_LIMIT_MB_PER_MINUTE);
    Flatness {
        rule: format!(
            "after a warm-up of {warm_up:.0} s: mean RSS of the last third at most \
             max({:.0}% of the mean over the next {interval:.0} s, {GROWTH_LIMIT_MB:.0} MB) \
             above it, and a least-squares slope after the warm-up of at most \
             {SLOPE_LIMIT_MB_PER_MINUTE:.1} MB/min",
            GROWTH_LIMIT_FRACTION * 100.0
        ),
        warm_up_seconds: warm_up,
        reference_mb: reference,
        last_third_mb: last_third,
        growth_mb: growth,
        growth_limit_mb: limit,
        slope_mb_per_minute: slope,
        slope_limit_mb_per_minute: SLOPE_LIMIT_MB_PER_MINUTE,
        peak_mb: readings.iter().map(|r| r.rss_mb).reduce(f64::max),
        readings: readings.len(),
        flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rss: impl Fn(f64) -> f64) -> Vec<Reading> {
        (1..=600)
            .map(|second| {
                let seconds = f64::from(second);
                Reading {
                    seconds,
                    rss_mb: rss(seconds),
                }
            })
            .collect()
    }

    #[test]
    fn a_process_that_settles_after_warm_up_is_flat() {
        // Grows during the warm-up, then wobbles around 120 MB.
        let readings = run(|s| {
            if s < 30.0 {
                40.0 + s * 2.5
            } else {
                120.0 + (s / 7.0).sin() * 3.0
            }
        });
        let verdict = judge(&readings, 30.0, 600.0);
        assert!(verdict.flat, "{verdict:?}");
        assert!(verdict.growth_mb.unwrap().abs() < 3.0);
        assert!(verdict.slope_mb_per_minute.unwrap().abs() < 0.5);
    }

    #[test]
    fn a_steady_leak_is_caught_by_the_slope() {
        // 1.5 MB a minute: 14 MB in ten minutes, inside the growth bound but not the slope's.
        let readings = run(|s| 200.0 + s / 40.0);
        let verdict = judge(&readings, 30.0, 600.0);
        assert!(!verdict.flat, "{verdict:?}");
        assert!((verdict.slope_mb_per_minute.unwrap() - 1.5).abs() < 0.01);
        assert!(verdict.growth_mb.unwrap() < verdict.growth_limit_mb.unwrap());
    }

    #[test]
    fn a_late_jump_is_caught_by_the_growth_bound() {
        let readings = run(|s| if s < 450.0 { 100.0 } else { 140.0 });
        let verdict = judge(&readings, 30.0, 600.0);
        assert!(!verdict.flat, "{verdict:?}");
        assert!((verdict.growth_mb.unwrap() - 40.0 * 151.0 / 201.0).abs() < 0.5);
    }

    #[test]
    fn without_readings_nothing_is_judged_flat() {
        let verdict = judge(&[], 30.0, 600.0);
        assert!(!verdict.flat);
        assert_eq!(verdict.reference_mb, None);
    }

    #[test]
    fn the_own_process_has_a_resident_set() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }
}
