//! The recorder's stand-in: drains the BPF ring buffer every few milliseconds (a batch of
//! records per wake-up, no syscall per packet), gathers each stream's G.711 payload in
//! memory and hands full chunks to a writer thread that appends them to the stream's file.
//! The drainer never touches the disk: on a shared disk a `write` stalled for seconds (dirty
//! page throttling) and the kernel dropped half the payloads of a 1,000-call run while the
//! drainer was blocked.

use std::collections::HashMap as StdMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use aya::maps::{MapData, RingBuf};

/// How long the drainer sleeps between batches.
pub const PERIOD: Duration = Duration::from_millis(5);

/// A stream's payload is handed to the writer in chunks of this size (~0.5 s of G.711).
const CHUNK: usize = 4096;

/// What the drainer did.
#[derive(Debug, Default)]
pub struct TapStats {
    pub records: u64,
    pub bytes: u64,
    pub batches: u64,
    pub malformed: u64,
    /// Largest backlog of chunks waiting for the writer (the disk's stalls).
    pub max_backlog: usize,
}

/// The payload of one ring-buffer record (`struct tap_rec`: u32 stream id, u16 length, u16
/// pad, u64 time, the packet), as (stream, G.711 samples after the RTP header); None if
/// malformed.
pub fn parse(record: &[u8]) -> Option<(u32, &[u8])> {
    let id = u32::from_ne_bytes(record.get(0..4)?.try_into().ok()?);
    let len = usize::from(u16::from_ne_bytes(record.get(4..6)?.try_into().ok()?));
    let rtp = record.get(16..16 + len)?;
    // RTP version 2, then 12 bytes and 4 per CSRC.
    let first = *rtp.first()?;
    if first >> 6 != 2 {
        return None;
    }
    let header = 12 + 4 * usize::from(first & 0x0f);
    Some((id, rtp.get(header..)?))
}

/// Drains `ring` until `stop`; with `dir`, stream `id`'s payload goes to `dir/<id>.ul`.
pub fn drain(
    mut ring: RingBuf<MapData>,
    dir: Option<PathBuf>,
    stop: &AtomicBool,
) -> std::io::Result<TapStats> {
    let mut pending: StdMap<u32, Vec<u8>> = StdMap::new();
    let mut stats = TapStats::default();
    let (tx, rx) = mpsc::channel::<(u32, Vec<u8>)>();
    let backlog = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = dir.map(|dir| {
        let backlog = backlog.clone();
        thread::Builder::new()
            .name("tap-write".into())
            .spawn(move || write_chunks(&dir, rx, &backlog))
    });
    let writer = writer.transpose()?;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let mut any = false;
        while let Some(item) = ring.next() {
            any = true;
            let Some((id, samples)) = parse(&item) else {
                stats.malformed += 1;
                continue;
            };
            stats.records += 1;
            stats.bytes += samples.len() as u64;
            if writer.is_some() {
                let buf = pending
                    .entry(id)
                    .or_insert_with(|| Vec::with_capacity(CHUNK));
                buf.extend_from_slice(samples);
                if buf.len() >= CHUNK {
                    let full = std::mem::replace(buf, Vec::with_capacity(CHUNK));
                    stats.max_backlog = stats
                        .max_backlog
                        .max(backlog.fetch_add(1, Ordering::Relaxed) + 1);
                    // The writer failing ends its thread; its error is reported at the end.
                    let _ = tx.send((id, full));
                }
            }
        }
        stats.batches += u64::from(any);
        if stopping {
            break;
        }
        thread::sleep(PERIOD);
    }
    for (id, rest) in pending.drain().filter(|(_, b)| !b.is_empty()) {
        let _ = tx.send((id, rest));
    }
    drop(tx);
    if let Some(w) = writer {
        w.join()
            .map_err(|_| std::io::Error::other("the tap writer panicked"))??;
    }
    Ok(stats)
}

/// Appends each chunk to its stream's file until the drainer hangs up.
fn write_chunks(
    dir: &std::path::Path,
    rx: mpsc::Receiver<(u32, Vec<u8>)>,
    backlog: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    let mut files: StdMap<u32, File> = StdMap::new();
    for (id, chunk) in rx {
        backlog.fetch_sub(1, Ordering::Relaxed);
        let file = match files.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(File::create(dir.join(format!("{id}.ul")))?)
            }
        };
        file.write_all(&chunk)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u32, rtp: &[u8]) -> Vec<u8> {
        let mut r = id.to_ne_bytes().to_vec();
        r.extend((rtp.len() as u16).to_ne_bytes());
        r.extend([0, 0]);
        r.extend(0u64.to_ne_bytes());
        r.extend(rtp);
        r.resize(16 + 256, 0);
        r
    }

    #[test]
    fn payload_after_the_rtp_header() {
        let mut rtp = vec![0x80, 8, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        rtp.extend([0xd5; 160]);
        let r = record(7, &rtp);
        let (id, samples) = parse(&r).unwrap();
        assert_eq!((id, samples.len()), (7, 160));
        assert!(samples.iter().all(|&b| b == 0xd5));
    }

    #[test]
    fn short_or_not_rtp_is_malformed_not_a_panic() {
        assert!(parse(&[1, 2, 3]).is_none());
        assert!(parse(&record(1, &[0x80, 8, 0])).is_none());
        assert!(parse(&record(1, &[0x00; 20])).is_none());
        let mut r = record(1, &[0x80; 12]);
        r[4] = 0xff; // length past the record
        r[5] = 0xff;
        assert!(parse(&r).is_none());
    }
}
