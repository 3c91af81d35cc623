//! The null port: a sink for benchmarks and for chains whose output nobody needs, and,
//! given a frame size, a source that costs nothing, as DPDK's `net_null` is: what a
//! benchmark through it measures is the platform's own cost per packet.

use onvm_shm::{Buf, Pool};

use crate::{BadBuffers, NfQueue, Port, PortStats, now_ns, swallow};

/// Counts and frees what is sent; receives nothing, or (`null:<N>B`) a frame of `N`
/// bytes (FCS included) into every buffer it can take, as fast as it is polled.
#[derive(Debug)]
pub struct NullPort {
    name: String,
    /// Receive: the port number stamped on packets, and their length without the FCS.
    rx: Option<(u16, u32)>,
    stats: PortStats,
    bad: BadBuffers,
}

impl NullPort {
    /// A sink that receives nothing.
    pub fn new() -> Self {
        Self {
            name: "null".into(),
            rx: None,
            stats: PortStats::default(),
            bad: BadBuffers::default(),
        }
    }

    /// A sink that also receives `frame_size`-byte frames (FCS included, as `gen:`'s
    /// sizes) as port `port_no`. Like `net_null` without `copy`, it writes only the
    /// metadata: the bytes are whatever the buffer last held (zeros in a new region).
    pub fn receiving(port_no: u16, frame_size: u16) -> Self {
        Self {
            name: format!("null:{frame_size}B"),
            rx: Some((port_no, u32::from(frame_size).saturating_sub(4))),
            ..Self::new()
        }
    }
}

impl Default for NullPort {
    fn default() -> Self {
        Self::new()
    }
}

impl Port for NullPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<Buf>, max: usize) -> usize {
        let Some((port_no, len)) = self.rx else {
            return 0;
        };
        let start = out.len();
        pool.alloc_burst(max, out);
        let now = now_ns();
        let mut i = start;
        while i < out.len() {
            // The metadata line is written over, never read (`Holder::packet_reset`);
            // the length fits (checked at open). Should either fail, the buffer goes
            // back, counted.
            if let Err(e) = pool.holder().received(&mut out[i], len as usize, port_no, now) {
                let index = out[i].index();
                self.bad.count(&mut self.stats, "receiving into", index, &e);
                pool.free(out.remove(i));
                continue;
            }
            i += 1;
        }
        let n = out.len() - start;
        self.stats.rx += n as u64;
        self.stats.rx_bytes += n as u64 * u64::from(len);
        n
    }

    /// A null port has as many queues as asked, like `net_null`'s: each receiving one
    /// receives as fast as it is polled, each sink drops what it is sent.
    fn queues(&mut self, n: usize) -> Vec<Box<dyn Port>> {
        (1..=n)
            .map(|q| {
                Box::new(NullPort {
                    name: format!("{} queue {q}", self.name),
                    rx: self.rx,
                    ..Self::new()
                }) as Box<dyn Port>
            })
            .collect()
    }

    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<Buf>) -> usize {
        swallow(pool, bufs, &mut self.stats, &mut self.bad)
    }

    /// Nothing but buffers and counts: an NF can receive and send as this port does.
    fn nf_queue(&self) -> Option<NfQueue> {
        Some(NfQueue {
            // Checked at open to fit a buffer, so also a u16.
            frame_len: self.rx.map(|(_, len)| len as u16),
        })
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn take_bad_buffers(&mut self, out: &mut Vec<String>) {
        self.bad.take(out);
    }

    /// A sink will never receive, so a manager waiting for its inputs to run dry need
    /// not wait for it; a receiving one never runs dry.
    fn rx_done(&self) -> bool {
        self.rx.is_none()
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

    #[test]
    fn a_null_port_splits_into_queues_that_count_apart() {
        let (_r, mut pool) = testutil::pool(64, 256);
        let mut sink = NullPort::new().queues(1).pop().unwrap();
        assert!(sink.rx_done(), "a sink's queue receives nothing");
        let mut port = NullPort::receiving(1, 64);
        let mut qs = port.queues(2);
        assert_eq!(qs.len(), 2);
        assert_eq!(qs[1].name(), "null:64B queue 2");
        let mut out = Vec::new();
        assert_eq!(qs[0].rx_burst(&mut pool, &mut out, 8), 8);
        assert_eq!(
            pool.holder().meta(&out[0]).in_port(),
            1,
            "stamped with the port's number"
        );
        assert_eq!((qs[0].stats().rx, qs[1].stats().rx, port.stats().rx), (8, 0, 0));
        // A sink's queue counts what it sends apart too.
        assert_eq!(sink.tx_burst(&mut pool, &mut out), 8);
        assert_eq!(sink.stats().tx, 8);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn receiving_fills_every_free_buffer_with_a_frame_of_its_size() {
        let (_r, mut pool) = testutil::pool(16, 256);
        let mut port = NullPort::receiving(3, 64);
        assert_eq!(port.name(), "null:64B");
        assert!(!port.rx_done(), "a receiving null port never runs dry");
        let mut out = Vec::new();
        // More asked than the pool holds: what it holds, then nothing until some return.
        assert_eq!(port.rx_burst(&mut pool, &mut out, 32), 16);
        assert_eq!(port.rx_burst(&mut pool, &mut out, 32), 0);
        for b in &mut out {
            let pkt = pool.holder().packet(b).unwrap();
            assert_eq!(pkt.data().len(), 60, "64 B with the FCS, 60 without");
            assert_eq!(pkt.meta().in_port(), 3);
            assert!(pkt.meta().timestamp() > 0);
        }
        let s = port.stats();
        assert_eq!((s.rx, s.rx_bytes), (16, 16 * 60));
        assert_eq!(port.nf_queue(), Some(NfQueue { frame_len: Some(60) }));
        assert_eq!(NullPort::new().nf_queue(), Some(NfQueue { frame_len: None }));
        assert_eq!(port.tx_burst(&mut pool, &mut out), 16);
        testutil::assert_whole(&pool);
        assert_eq!(
            port.rx_burst(&mut pool, &mut out, 8),
            8,
            "freed buffers are received into again"
        );
        port.tx_burst(&mut pool, &mut out);
        testutil::assert_whole(&pool);
    }
}
