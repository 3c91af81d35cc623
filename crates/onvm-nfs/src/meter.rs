//! Packet-rate measurement over a window that starts at the first tick (after warm-up)
//! and ends at the last one, so start-up and shutdown do not dilute the figure.

use std::time::{Duration, Instant};

use onvm_nf::{Batch, Ctx, Handler, PacketMut};

/// Counts packets and remembers the counts at ticks.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    seen: u64,
    first: Option<(Instant, u64)>,
    last: Option<(Instant, u64)>,
}

impl Meter {
    /// Count `n` packets.
    #[inline]
    pub fn add(&mut self, n: u64) {
        self.seen += n;
    }

    /// Packets counted so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Mark a tick; returns the rate (Mpps) since the previous tick, if there was one.
    pub fn tick(&mut self) -> Option<f64> {
        let now = Instant::now();
        self.first.get_or_insert((now, self.seen));
        let rate = self
            .last
            .map(|(t, n)| (self.seen - n) as f64 / now.duration_since(t).as_secs_f64() / 1e6);
        self.last = Some((now, self.seen));
        rate
    }

    /// Whether the first tick (end of warm-up) has passed.
    pub fn warmed_up(&self) -> bool {
        self.first.is_some()
    }

    /// (Mpps, packets, window) between the first and the last tick.
    pub fn window(&self) -> (f64, u64, Duration) {
        match (self.first, self.last) {
            (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => {
                let w = t1.duration_since(t0);
                ((n1 - n0) as f64 / w.as_secs_f64() / 1e6, n1 - n0, w)
            }
            _ => (0.0, 0, Duration::ZERO),
        }
    }
}

/// Any handler, with a [`Meter`] counting what it sees.
#[derive(Debug)]
pub struct Metered<H> {
    /// The wrapped handler.
    pub inner: H,
    /// Its meter.
    pub meter: Meter,
}

impl<H> Metered<H> {
    /// Wrap `inner`.
    pub fn new(inner: H) -> Self {
        Metered {
            inner,
            meter: Meter::default(),
        }
    }
}

impl<H: Handler> Handler for Metered<H> {
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        self.inner.setup(ctx)
    }
    fn packet(&mut self, pkt: &mut PacketMut<'_>, ctx: &mut Ctx<'_>) -> onvm_nf::Action {
        self.meter.add(1);
        self.inner.packet(pkt, ctx)
    }
    fn batch(&mut self, batch: &mut Batch<'_>, ctx: &mut Ctx<'_>) {
        self.meter.add(batch.len() as u64);
        self.inner.batch(batch, ctx)
    }
    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        self.meter.tick();
        self.inner.tick(ctx)
    }
    fn message(&mut self, from: u16, bytes: &[u8], ctx: &mut Ctx<'_>) {
        self.inner.message(from, bytes, ctx)
    }
    fn stop(&mut self, ctx: &mut Ctx<'_>) {
        self.meter.tick();
        self.inner.stop(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_starts_at_the_first_tick() {
        let mut m = Meter::default();
        m.add(1000); // warm-up, not counted
        assert_eq!(m.tick(), None);
        m.add(500);
        std::thread::sleep(Duration::from_millis(20));
        assert!(m.tick().unwrap() > 0.0);
        let (mpps, n, w) = m.window();
        assert_eq!(n, 500);
        assert!(w >= Duration::from_millis(20));
        assert!(mpps > 0.0 && mpps < 500.0 / 0.02 / 1e6 + 1e-9);
    }
}
