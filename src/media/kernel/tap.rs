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

/// The head each packet carries in [`TappedPackets`]: its time (8 bytes), length (2) and
/// stream (1).
const HEAD: usize = 11;

/// Bytes a queue grows by: four 20 ms G.711 packets with their heads.
const GROW_STEP: usize = 4 * (HEAD + 12 + 160);

/// One relayed packet of a recorded call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tapped<'a> {
    /// Which of the call's two streams ([`TapStream::ids`]): 0 or 1.
    pub stream: usize,
    /// `CLOCK_MONOTONIC` when the kernel relayed it, ns.
    pub at_ns: u64,
    /// The RTP packet, as sent.
    pub packet: &'a [u8],
}

/// A call's tapped packets back to back, each after its head: a 20 ms G.711 packet takes
/// 183 bytes, not a slot of the largest packet's size.
#[derive(Default)]
pub struct TappedPackets {
    bytes: Vec<u8>,
    count: usize,
}

impl TappedPackets {
    fn push(&mut self, stream: usize, at_ns: u64, packet: &[u8]) {
        let need = HEAD + packet.len();
        if self.bytes.capacity() - self.bytes.len() < need {
            // Steps, not doubling: the buffer lasts the call and holds one feed (~100 ms).
            self.bytes.reserve_exact(need.next_multiple_of(GROW_STEP));
        }
        self.bytes.extend_from_slice(&at_ns.to_ne_bytes());
        self.bytes
            .extend_from_slice(&(packet.len() as u16).to_ne_bytes());
        self.bytes.push(stream as u8);
        self.bytes.extend_from_slice(packet);
        self.count += 1;
    }

    /// How many packets.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The packets, in the order they came.
    pub fn iter(&self) -> impl Iterator<Item = Tapped<'_>> {
        let mut rest = &self.bytes[..];
        std::iter::from_fn(move || {
            let (head, after) = rest.split_first_chunk::<HEAD>()?;
            let at_ns = u64::from_ne_bytes(head[..8].try_into().ok()?);
            let len = usize::from(u16::from_ne_bytes([head[8], head[9]]));
            let (packet, next) = after.split_at_checked(len)?;
            rest = next;
            Some(Tapped {
                stream: usize::from(head[10]),
                at_ns,
                packet,
            })
        })
    }

    /// Empties it, and gives back what a burst grew it by (the relay thread late, the
    /// queue filled): more than two steps over what it held.
    fn clear(&mut self) {
        let held = self.bytes.len();
        self.bytes.clear();
        self.count = 0;
        if self.bytes.capacity() > held + 2 * GROW_STEP {
            self.bytes.shrink_to(held.next_multiple_of(GROW_STEP));
        }
    }
}

/// `struct tap_rec`: u32 stream id, u16 length, u16 pad, u64 time, the packet. `None` if
/// malformed or longer than [`TAP_MAX`].
fn parse(record: &[u8]) -> Option<(u32, usize, u64, &[u8])> {
    let id = u32::from_ne_bytes(record.get(0..4)?.try_into().ok()?);
    let len = usize::from(u16::from_ne_bytes(record.get(4..6)?.try_into().ok()?));
    let at_ns = u64::from_ne_bytes(record.get(8..16)?.try_into().ok()?);
    let packet = record.get(16..16 + len).filter(|_| len <= TAP_MAX)?;
    Some((id >> 1, (id & 1) as usize, at_ns, packet))
}

/// A call's tapped packets, between the drainer and the call's relay thread.
#[derive(Default)]
pub struct TapQueue {
    packets: Mutex<TappedPackets>,
    /// Packets that did not fit.
    lost: AtomicU64,
}

impl TapQueue {
    fn push(&self, stream: usize, at_ns: u64, packet: &[u8]) {
        let mut packets = self.packets.lock().unwrap_or_else(PoisonError::into_inner);
        if packets.len() < QUEUE_MAX {
            packets.push(stream, at_ns, packet);
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
            Some((call, stream, at_ns, packet)) => {
                if let Some(queue) = self.0.get(&call) {
                    queue.push(stream, at_ns, packet);
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

    /// Swaps the packets tapped since the last time into `taken` (what it held goes back
    /// to the queue, emptied: the relay thread's one buffer goes round its calls' queues,
    /// so a queue's buffer is reused rather than allocated again); how many were lost on
    /// the way.
    pub fn take(&self, taken: &mut TappedPackets) -> u64 {
        taken.clear();
        let mut queue = self
            .queue
            .packets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut *queue, taken);
        drop(queue);
        self.queue.lost.swap(0, Ordering::Relaxed)
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
        let mut got = TappedPackets::default();
        assert_eq!(one.take(&mut got), 0);
        let seen: Vec<_> = got.iter().map(|t| (t.stream, t.at_ns, t.packet)).collect();
        assert_eq!(seen, [(0, 7, &rtp[..]), (1, 8, &rtp[..12])]);
        assert_eq!(two.take(&mut got), 0);
        assert_eq!(got.iter().map(|t| t.at_ns).collect::<Vec<_>>(), [9]);
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
        let mut got = TappedPackets::default();
        let lost = call.take(&mut got);
        assert_eq!(
            (got.len(), got.iter().count(), lost),
            (QUEUE_MAX, QUEUE_MAX, 3)
        );
        let mut bad = rec.clone();
        bad[4] = 0xff; // length past the record
        bad[5] = 0xff;
        taps.batch().route(&rec[..3]);
        taps.batch().route(&bad);
        // What the burst grew is given back once a feed held little again: the burst's
        // buffer comes back to `got` on the fourth feed (the two take turns).
        for _ in 0..4 {
            taps.batch().route(&rec);
            assert_eq!(call.take(&mut got), 0);
            assert_eq!(got.len(), 1);
        }
        assert!(
            got.bytes.capacity() <= GROW_STEP,
            "{}",
            got.bytes.capacity()
        );
        let mut long = record(call.ids()[0], 1, &[0x80; TAP_MAX + 1]);
        long.resize(16 + TAP_MAX + 1, 0);
        taps.batch().route(&long);
        let lost = call.take(&mut got);
        assert!(got.is_empty() && got.iter().next().is_none() && lost == 0);
    }
}
