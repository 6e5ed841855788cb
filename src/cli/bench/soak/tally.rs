//! What the soak's load records while it runs: for each kind of work, the latencies and errors
//! of the current interval (taken, and so reset, at each report), and counts and a latency
//! histogram of the whole run, whose size does not grow with the run.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// The kinds of work the soak keeps going at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// `addNote` mutations at a fixed rate; latency is the request's.
    Appends,
    /// The `matter` query of a random seeded matter.
    MatterReads,
    /// The `matters` query filtered by status and practice area.
    MatterLists,
    /// Events received by the WebSocket subscribers; latency is the lag, receipt minus the
    /// event's `recordedAt`.
    Subscriptions,
    /// Webhooks received; latency is receipt minus the event's `recorded_at`.
    Webhooks,
    /// `GET /healthz` on the same server, the baseline the queries are compared with.
    Healthz,
}

impl Work {
    fn index(self) -> usize {
        self as usize
    }
}

/// Sub-buckets per power of two: the histogram's percentiles are within 1/64 (1.6%) of the
/// exact value, rounded up.
const SUB_BUCKETS: u64 = 64;
/// Powers of two above the first 64 microseconds (to about 2^40 us, 12 days).
const POWERS: u64 = 35;

/// Latencies in microseconds, counted in log-linear buckets.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; ((POWERS + 1) * SUB_BUCKETS) as usize],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn bucket(micros: u64) -> usize {
        if micros < SUB_BUCKETS {
            return micros as usize;
        }
        let power = u64::from(63 - micros.leading_zeros());
        let shift = power - SUB_BUCKETS.trailing_zeros() as u64;
        let sub = (micros >> shift) - SUB_BUCKETS;
        let index = (shift + 1) * SUB_BUCKETS + sub;
        (index as usize).min(((POWERS + 1) * SUB_BUCKETS) as usize - 1)
    }

    /// The largest value that falls in bucket `index`.
    fn upper(index: usize) -> u64 {
        let index = index as u64;
        if index < SUB_BUCKETS {
            return index;
        }
        let shift = index / SUB_BUCKETS - 1;
        let sub = index % SUB_BUCKETS;
        ((SUB_BUCKETS + sub + 1) << shift) - 1
    }

    pub fn record(&mut self, micros: u64) {
        if let Some(count) = self.counts.get_mut(Self::bucket(micros)) {
            *count += 1;
        }
        self.total += 1;
        self.max = self.max.max(micros);
    }

    /// The `p` quantile (0 < p <= 1) in microseconds, `None` when empty.
    pub fn quantile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((self.total as f64 * p).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Self::upper(index).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// One kind of work over a stretch of time: how much was done, how fast, how long it took and
/// how much failed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    pub operations: u64,
    pub per_second: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub errors: u64,
}

impl Figures {
    /// Exact figures of an interval's latencies (microseconds).
    pub fn exact(mut latencies: Vec<u32>, errors: u64, seconds: f64) -> Self {
        latencies.sort_unstable();
        let quantile = |p: f64| {
            let index = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
            latencies
                .get(index)
                .map(|&micros| f64::from(micros) / 1000.0)
        };
        Figures {
            operations: latencies.len() as u64,
            per_second: latencies.len() as f64 / seconds.max(1e-9),
            p50_ms: quantile(0.50),
            p99_ms: quantile(0.99),
            max_ms: quantile(1.0),
            errors,
        }
    }

    /// Figures of a whole run, from its histogram.
    pub fn histogram(histogram: &Histogram, errors: u64, seconds: f64) -> Self {
        let ms = |micros: Option<u64>| micros.map(|micros| micros as f64 / 1000.0);
        Figures {
            operations: histogram.total,
            per_second: histogram.total as f64 / seconds.max(1e-9),
            p50_ms: ms(histogram.quantile(0.50)),
            p99_ms: ms(histogram.quantile(0.99)),
            max_ms: ms(histogram.quantile(1.0)),
            errors,
        }
    }
}

#[derive(Default)]
struct Kind {
    /// This interval's latencies in microseconds.
    latencies: Vec<u32>,
    errors: u64,
    whole: Histogram,
    whole_errors: u64,
}

/// The recordings of every kind of work, shared by the tasks doing it.
#[derive(Default)]
pub struct Tally {
    kinds: [Mutex<Kind>; 6],
}

impl Tally {
    /// One operation of `work` done in `latency`.
    pub fn done(&self, work: Work, latency: Duration) {
        self.done_micros(work, u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// One operation of `work` done in `micros` microseconds.
    pub fn done_micros(&self, work: Work, micros: u64) {
        if let Some(Ok(mut kind)) = self.kinds.get(work.index()).map(Mutex::lock) {
            kind.latencies
                .push(u32::try_from(micros).unwrap_or(u32::MAX));
            kind.whole.record(micros);
        }
    }

    /// One operation of `work` failed.
    pub fn failed(&self, work: Work) {
        if let Some(Ok(mut kind)) = self.kinds.get(work.index()).map(Mutex::lock) {
            kind.errors += 1;
            kind.whole_errors += 1;
        }
    }

    /// The figures of `work` since the last call, over `seconds`; starts the next interval.
    pub fn take(&self, work: Work, seconds: f64) -> Figures {
        let (latencies, errors) = match self.kinds.get(work.index()).map(Mutex::lock) {
            Some(Ok(mut kind)) => {
                let latencies = std::mem::take(&mut kind.latencies);
                (latencies, std::mem::take(&mut kind.errors))
            }
            _ => (Vec::new(), 0),
        };
        Figures::exact(latencies, errors, seconds)
    }

    /// The figures of `work` over the whole run, `seconds` long.
    pub fn whole(&self, work: Work, seconds: f64) -> Figures {
        match self.kinds.get(work.index()).map(Mutex::lock) {
            Some(Ok(kind)) => Figures::histogram(&kind.whole, kind.whole_errors, seconds),
            _ => Figures::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_its_resolution() {
        let mut histogram = Histogram::default();
        for micros in 1..=100_000u64 {
            histogram.record(micros);
        }
        for (p, exact) in [(0.5, 50_000.0), (0.99, 99_000.0), (1.0, 100_000.0)] {
            let found = histogram.quantile(p).unwrap() as f64;
            assert!(
                found >= exact && found <= exact * (1.0 + 1.0 / 64.0),
                "p{p}: {found} against {exact}"
            );
        }
        assert_eq!(Histogram::default().quantile(0.99), None);
    }

    #[test]
    fn every_bucket_holds_the_values_below_its_upper_bound() {
        for micros in (0..5_000_000u64).step_by(997) {
            let bucket = Histogram::bucket(micros);
            assert!(Histogram::upper(bucket) >= micros, "{micros}");
            if bucket > 0 {
                assert!(Histogram::upper(bucket - 1) < micros, "{micros}");
            }
        }
    }

    #[test]
    fn taking_an_interval_starts_the_next_and_keeps_the_whole_run() {
        let tally = Tally::default();
        tally.done(Work::Appends, Duration::from_millis(2));
        tally.done(Work::Appends, Duration::from_millis(4));
        tally.failed(Work::Appends);
        let first = tally.take(Work::Appends, 2.0);
        assert_eq!(first.operations, 2);
        assert_eq!(first.errors, 1);
        assert_eq!(first.per_second, 1.0);
        assert_eq!(first.p99_ms, Some(4.0));
        tally.done(Work::Appends, Duration::from_millis(1));
        let second = tally.take(Work::Appends, 1.0);
        assert_eq!((second.operations, second.errors), (1, 0));
        let whole = tally.whole(Work::Appends, 3.0);
        assert_eq!((whole.operations, whole.errors), (3, 1));
        assert_eq!(tally.take(Work::Webhooks, 1.0).operations, 0);
    }
}
