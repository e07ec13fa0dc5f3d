//! Log-linear histograms: four buckets per power of two, so a recorded
//! value is known to within 25 %. Bucket indexes and bounds are computed,
//! not looked up, so a histogram costs its 252 counters and nothing shared.

use std::fmt;
use std::marker::PhantomData;

/// Sub-buckets per power of two, as a power of two itself.
const SUB_BITS: u32 = 2;
const SUB_BUCKETS: usize = 1 << SUB_BITS;
/// Values below `SUB_BUCKETS` get one bucket each; every octave above that
/// (there are `64 - SUB_BITS` of them) gets `SUB_BUCKETS`.
const BUCKETS: usize = SUB_BUCKETS * (64 - SUB_BITS as usize + 1);

/// The bucket `value` falls in.
fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS as u64 {
        return value as usize;
    }
    let msb = 63 - value.leading_zeros();
    let offset = (value >> (msb - SUB_BITS)) as usize & (SUB_BUCKETS - 1);
    (msb - SUB_BITS + 1) as usize * SUB_BUCKETS + offset
}

/// The smallest value of bucket `index`.
fn bucket_floor(index: usize) -> u64 {
    if index < SUB_BUCKETS {
        return index as u64;
    }
    let octave = (index / SUB_BUCKETS) as u32 - 1;
    let offset = (index % SUB_BUCKETS) as u64;
    (SUB_BUCKETS as u64 + offset) << octave
}

/// Counts of recorded values by bucket. `T` is accepted for the upstream
/// signature (per-period metadata); this stand-in keeps a single period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram<T = ()> {
    buckets: Box<[u64]>,
    total: u64,
    _data: PhantomData<fn() -> T>,
}

impl<T> Default for Histogram<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Histogram<T> {
    pub fn new() -> Self {
        Histogram {
            buckets: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            _data: PhantomData,
        }
    }

    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    pub fn record_n(&mut self, value: u64, count: u64) {
        self.buckets[bucket_of(value)] += count;
        self.total += count;
    }

    /// Number of values recorded.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The lower bound of the bucket holding the `p`-th fraction of the
    /// values (`p` in 0..=1), or 0 when nothing was recorded.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_floor(index);
            }
        }
        bucket_floor(BUCKETS - 1)
    }

    pub fn percentile_stats(&self) -> PercentileStats {
        PercentileStats {
            samples: self.total,
            p0_1: self.percentile(0.001),
            p1: self.percentile(0.01),
            p5: self.percentile(0.05),
            p10: self.percentile(0.10),
            p50: self.percentile(0.50),
            p90: self.percentile(0.90),
            p99: self.percentile(0.99),
            p99_9: self.percentile(0.999),
        }
    }

    /// Non-empty buckets as (lower bound, count), smallest first.
    fn filled(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(index, count)| (bucket_floor(index), *count))
    }
}

/// Percentiles of a histogram (each a bucket's lower bound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PercentileStats {
    pub samples: u64,
    pub p0_1: u64,
    pub p1: u64,
    pub p5: u64,
    pub p10: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
}

impl fmt::Display for PercentileStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[samples: {}, P0.1: {}, P1: {}, P5: {}, P10: {}, P50: {}, P90: {}, P99: {}, P99.9: {}]",
            self.samples,
            self.p0_1,
            self.p1,
            self.p5,
            self.p10,
            self.p50,
            self.p90,
            self.p99,
            self.p99_9
        )
    }
}

/// Named histograms rendered as text bars, one row per filled bucket.
#[derive(Debug, Clone)]
pub struct AsciiChart<T = ()> {
    series: Vec<(String, Histogram<T>)>,
    bar_width: usize,
}

impl<T> Default for AsciiChart<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> AsciiChart<T> {
    pub fn new() -> Self {
        AsciiChart {
            series: Vec::new(),
            bar_width: 40,
        }
    }

    pub fn add(mut self, name: &str, histogram: Histogram<T>) -> Self {
        self.series.push((name.to_string(), histogram));
        self
    }

    pub fn bar_width(mut self, width: usize) -> Self {
        self.bar_width = width.max(1);
        self
    }

    /// One line per series: its name and percentiles.
    pub fn compact(&self) -> Chart<'_, T> {
        Chart {
            chart: self,
            bars: false,
        }
    }

    /// Each series' percentiles, then a bar per filled bucket.
    pub fn detailed(&self) -> Chart<'_, T> {
        Chart {
            chart: self,
            bars: true,
        }
    }
}

impl<T> fmt::Display for AsciiChart<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.detailed().fmt(f)
    }
}

/// A rendering of an [`AsciiChart`].
pub struct Chart<'a, T> {
    chart: &'a AsciiChart<T>,
    bars: bool,
}

impl<T> fmt::Display for Chart<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, histogram) in &self.chart.series {
            writeln!(f, "{name}: {}", histogram.percentile_stats())?;
            if !self.bars {
                continue;
            }
            let tallest = histogram.filled().map(|(_, c)| c).max().unwrap_or(0);
            for (floor, count) in histogram.filled() {
                let width = (count * self.chart.bar_width as u64).div_ceil(tallest) as usize;
                writeln!(f, "  {floor:>12} | {} {count}", "#".repeat(width))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(BUCKETS, 252);
        for index in 0..BUCKETS {
            let floor = bucket_floor(index);
            assert_eq!(bucket_of(floor), index, "floor of bucket {index}");
            if index > 0 {
                assert_eq!(bucket_of(floor - 1), index - 1, "below bucket {index}");
            }
        }
    }

    #[test]
    fn percentiles_land_in_the_right_bucket() {
        let mut h: Histogram = Histogram::new();
        assert_eq!(h.percentile_stats(), PercentileStats::default());
        for v in 1..=1000 {
            h.record(v);
        }
        h.record_n(100_000, 10);
        let stats = h.percentile_stats();
        assert_eq!(stats.samples, 1010);
        // 505th value is 505, in the bucket [448, 512).
        assert_eq!(stats.p50, 448);
        assert_eq!(stats.p99_9, 98_304);
        assert_eq!(stats.p0_1, 2);
        let text = AsciiChart::new().add("v", h).detailed().to_string();
        assert!(text.starts_with("v: [samples: 1010"), "{text}");
        assert!(text.contains("98304 |"), "{text}");
    }
}
