//! A byte-rate limit shared by every stream that passes through it: each
//! chunk books its share of the rate and waits until its slot comes, so
//! concurrent copies together stay under the limit.

use crate::storage::BodyStream;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone)]
pub struct Throttle {
    /// Bytes per second; 0 is no limit.
    rate: u64,
    /// When the bandwidth booked so far is used up.
    free_at: Arc<std::sync::Mutex<Instant>>,
}

/// Bookings beyond this are not carried over: an idle limiter does not
/// save up a burst larger than this.
const MAX_BURST: Duration = Duration::from_millis(100);

impl Throttle {
    pub fn new(rate: u64) -> Self {
        Throttle {
            rate,
            free_at: Arc::new(std::sync::Mutex::new(Instant::now())),
        }
    }

    /// Waits until `bytes` may pass.
    pub async fn admit(&self, bytes: usize) {
        if let Some(start) = self.book(Instant::now(), bytes) {
            tokio::time::sleep_until(start).await;
        }
    }

    /// Books `bytes` at `now`: when they may pass (`None`: at once, no limit).
    fn book(&self, now: Instant, bytes: usize) -> Option<Instant> {
        if self.rate == 0 || bytes == 0 {
            return None;
        }
        let cost = Duration::from_secs_f64(bytes as f64 / self.rate as f64);
        let mut free_at = self.free_at.lock().unwrap_or_else(|e| e.into_inner());
        let start = (*free_at).max(now.checked_sub(MAX_BURST).unwrap_or(now));
        *free_at = start + cost;
        Some(start)
    }

    /// `stream`, paced by this limit.
    pub fn pace(&self, stream: BodyStream) -> BodyStream {
        let throttle = self.clone();
        stream
            .then(move |chunk| {
                let throttle = throttle.clone();
                async move {
                    if let Ok(bytes) = &chunk {
                        throttle.admit(bytes.len()).await;
                    }
                    chunk
                }
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookings_from_several_streams_add_up_to_the_rate() {
        let throttle = Throttle::new(1_000_000);
        let now = Instant::now() + Duration::from_secs(1);
        // 40 chunks of 50 kB booked at once, as two streams would: 2 MB at
        // 1 MB/s, so the last may pass after about 1.95 s.
        let mut last = now;
        for _ in 0..40 {
            last = throttle.book(now, 50_000).unwrap_or(now);
        }
        let after = last - now;
        assert!(after >= Duration::from_millis(1_800), "{after:?}");
        assert!(after <= Duration::from_millis(1_900), "{after:?}");
    }

    #[test]
    fn an_idle_limit_allows_only_a_short_burst() {
        let throttle = Throttle::new(1_000_000);
        let later = Instant::now() + Duration::from_secs(60);
        // Nothing booked for a minute: the first chunk may go back only to
        // the burst allowance, not a minute's worth.
        let start = throttle.book(later, 1_000).unwrap_or(later);
        assert!(later - start <= MAX_BURST);
    }

    #[test]
    fn no_limit_never_waits() {
        assert_eq!(Throttle::new(0).book(Instant::now(), 1 << 30), None);
    }
}
