//! The recorder's feed from the kernel path. The program copies each relayed packet of a
//! recorded call, as sent, into the `tap` ring buffer; one thread per process drains it
//! every [`PERIOD`] (a batch per wake-up, no syscall per packet) and appends each packet to
//! its call's [`TapQueue`]. The drainer never touches the disk or a recorder (a stalled disk
//! must not stop it: the kernel would drop payloads): the call's relay thread takes its
//! queue on a timer and feeds the session's recorder, the same jitter buffer and WAV writer
//! as in userspace. A queue is bounded; what does not fit is counted as lost, and the
//! recording says so.

use sas_core::id_map::IdMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long the drainer sleeps between batches.
pub const PERIOD: Duration = Duration::from_millis(5);

/// Largest packet the program copies (`TAP_MAX` of relay.bpf.c).
pub const TAP_MAX: usize = 256;

/// Packets a call's queue holds: 4 s of both directions at 20 ms, where its relay thread
/// takes them every 100 ms.
const QUEUE_MAX: usize = 400;

/// One relayed packet of a recorded call.
#[derive(Clone, Copy)]
pub struct Tapped {
    /// Which of the call's two streams ([`TapStream::ids`]): 0 or 1.
    pub stream: usize,
    /// `CLOCK_MONOTONIC` when the kernel relayed it, ns.
    pub at_ns: u64,
    len: u16,
    data: [u8; TAP_MAX],
}

impl Tapped {
    /// The RTP packet, as sent.
    pub fn packet(&self) -> &[u8] {
        &self.data[..usize::from(self.len).min(TAP_MAX)]
    }
}

/// `struct tap_rec`: u32 stream id, u16 length, u16 pad, u64 time, the packet. `None` if
/// malformed.
fn parse(record: &[u8]) -> Option<(u32, Tapped)> {
    let id = u32::from_ne_bytes(record.get(0..4)?.try_into().ok()?);
    let len = u16::from_ne_bytes(record.get(4..6)?.try_into().ok()?);
    let at_ns = u64::from_ne_bytes(record.get(8..16)?.try_into().ok()?);
    let packet = record.get(16..16 + usize::from(len))?;
    let mut data = [0; TAP_MAX];
    data.get_mut(..packet.len())?.copy_from_slice(packet);
    let stream = (id & 1) as usize;
    Some((
        id >> 1,
        Tapped {
            stream,
            at_ns,
            len,
            data,
        },
    ))
}

/// A call's tapped packets, between the drainer and the call's relay thread.
#[derive(Default)]
pub struct TapQueue {
    packets: Mutex<Vec<Tapped>>,
    /// Packets that did not fit.
    lost: AtomicU64,
}

impl TapQueue {
    fn push(&self, tapped: Tapped) {
        let mut packets = self.packets.lock().unwrap_or_else(PoisonError::into_inner);
        if packets.len() < QUEUE_MAX {
            packets.push(tapped);
        } else {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The queues of the recorded calls in the kernel, by call (numbers the router gives: a
/// fast hasher).
#[derive(Default)]
pub struct Taps {
    calls: Mutex<IdMap<u32, Arc<TapQueue>>>,
    next: AtomicU32,
}

impl Taps {
    fn lock(&self) -> MutexGuard<'_, IdMap<u32, Arc<TapQueue>>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A queue for one call's two streams, until the [`TapStream`] is dropped.
    pub fn open(self: &Arc<Self>) -> TapStream {
        let queue = Arc::new(TapQueue::default());
        let mut calls = self.lock();
        // Call numbers wrap after 2³¹ calls; one still open is skipped.
        let call = loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff;
            if !calls.contains_key(&n) {
                break n;
            }
        };
        calls.insert(call, Arc::clone(&queue));
        TapStream {
            taps: Arc::clone(self),
            call,
            queue,
        }
    }

    /// Routes a batch of records, under one lock.
    pub fn batch(&self) -> Batch<'_> {
        Batch(self.lock())
    }
}

/// The calls' queues, locked for a batch of records.
pub struct Batch<'a>(MutexGuard<'a, IdMap<u32, Arc<TapQueue>>>);

impl Batch<'_> {
    /// Hands `record` to its call's queue; a record of a call no longer open (it just
    /// left) is dropped.
    pub fn route(&self, record: &[u8]) {
        match parse(record) {
            Some((call, tapped)) => {
                if let Some(queue) = self.0.get(&call) {
                    queue.push(tapped);
                }
            }
            None => tracing::debug!(len = record.len(), "malformed tap record"),
        }
    }
}

/// One call's tap: the ids its map entries carry, and its queue.
pub struct TapStream {
    taps: Arc<Taps>,
    call: u32,
    queue: Arc<TapQueue>,
}

impl Drop for TapStream {
    fn drop(&mut self) {
        self.taps.lock().remove(&self.call);
    }
}

impl TapStream {
    /// The tap ids of the call's two streams (caller to seat, seat to caller).
    pub fn ids(&self) -> [u32; 2] {
        [self.call << 1, self.call << 1 | 1]
    }

    /// The packets tapped since the last time, and how many were lost on the way.
    pub fn take(&self) -> (Vec<Tapped>, u64) {
        let mut queue = self
            .queue
            .packets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Room for as many as last time: the drainer's pushes seldom move packets to grow.
        let room = Vec::with_capacity(queue.len());
        let packets = std::mem::replace(&mut *queue, room);
        drop(queue);
        (packets, self.queue.lost.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u32, at: u64, rtp: &[u8]) -> Vec<u8> {
        let mut r = id.to_ne_bytes().to_vec();
        r.extend((rtp.len() as u16).to_ne_bytes());
        r.extend([0, 0]);
        r.extend(at.to_ne_bytes());
        r.extend(rtp);
        r.resize(16 + TAP_MAX, 0);
        r
    }

    #[test]
    fn records_reach_their_call_and_stream_until_it_closes() {
        let taps = Arc::new(Taps::default());
        let (one, two) = (taps.open(), taps.open());
        let [a, b] = one.ids();
        let [c, _] = two.ids();
        let rtp = [0x80, 8, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9, 0xd5];
        let records = [
            record(a, 7, &rtp),
            record(b, 8, &rtp[..12]),
            record(c, 9, &rtp),
        ];
        records.iter().for_each(|r| taps.batch().route(r));
        let (got, lost) = one.take();
        assert_eq!(lost, 0);
        let seen: Vec<_> = got
            .iter()
            .map(|t| (t.stream, t.at_ns, t.packet().len()))
            .collect();
        assert_eq!(seen, [(0, 7, 13), (1, 8, 12)]);
        assert_eq!(two.take().0.len(), 1);
        drop(two);
        taps.batch().route(&record(c, 10, &rtp));
        assert!(taps.lock().len() == 1, "closed calls are forgotten");
    }

    #[test]
    fn a_full_queue_counts_what_it_loses_and_bad_records_are_dropped() {
        let taps = Arc::new(Taps::default());
        let call = taps.open();
        let rec = record(call.ids()[0], 1, &[0x80; 12]);
        let batch = taps.batch();
        (0..QUEUE_MAX + 3).for_each(|_| batch.route(&rec));
        drop(batch);
        let (got, lost) = call.take();
        assert_eq!((got.len(), lost), (QUEUE_MAX, 3));
        let mut bad = rec.clone();
        bad[4] = 0xff; // length past the record
        bad[5] = 0xff;
        taps.batch().route(&rec[..3]);
        taps.batch().route(&bad);
        let (got, lost) = call.take();
        assert!(got.is_empty() && lost == 0);
    }
}
