//! The null port: a sink for benchmarks and for chains whose output nobody needs.

use onvm_shm::{Buf, Pool};

use crate::{BadBuffers, Port, PortStats, swallow};

/// Receives nothing; counts and frees what is sent.
#[derive(Debug, Default)]
pub struct NullPort {
    stats: PortStats,
    bad: BadBuffers,
}

impl NullPort {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Port for NullPort {
    fn name(&self) -> &str {
        "null"
    }

    fn rx_burst(&mut self, _pool: &mut Pool, _out: &mut Vec<Buf>, _max: usize) -> usize {
        0
    }

    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<Buf>) -> usize {
        swallow(pool, bufs, &mut self.stats, &mut self.bad)
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn take_bad_buffers(&mut self, out: &mut Vec<String>) {
        self.bad.take(out);
    }

    /// Nothing will ever arrive, so a manager waiting for its inputs to run dry need not
    /// wait for this one.
    fn rx_done(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;

    #[test]
    fn receives_nothing_and_frees_what_it_sends() {
        let (_r, mut pool) = testutil::pool(16, 256);
        let mut port = NullPort::new();
        let mut out = Vec::new();
        assert_eq!(port.rx_burst(&mut pool, &mut out, 32), 0);
        assert!(out.is_empty() && port.rx_done());
        let mut bufs = Vec::new();
        pool.alloc_burst(5, &mut bufs);
        for b in &mut bufs {
            pool.holder().packet(b).unwrap().copy_from(&[0u8; 60]).unwrap();
        }
        assert_eq!(port.tx_burst(&mut pool, &mut bufs), 5);
        assert!(bufs.is_empty());
        let s = port.stats();
        assert_eq!((s.tx, s.tx_bytes, s.rx), (5, 300, 0));
        testutil::assert_whole(&pool);
    }
}
