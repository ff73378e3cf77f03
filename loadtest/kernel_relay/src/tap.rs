//! The recorder's stand-in: drains the BPF ring buffer every few milliseconds (a batch of
//! records per wake-up, no syscall per packet) and appends each stream's G.711 payload to
//! its own file.

use std::collections::HashMap as StdMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use aya::maps::{MapData, RingBuf};

/// How long the drainer sleeps between batches.
pub const PERIOD: Duration = Duration::from_millis(5);

/// What the drainer did.
#[derive(Debug, Default)]
pub struct TapStats {
    pub records: u64,
    pub bytes: u64,
    pub batches: u64,
    pub malformed: u64,
}

/// The payload of one ring-buffer record (`struct tap_rec`: u32 stream id, u16 length, u16
/// pad, the packet), as (stream, G.711 samples after the RTP header); None if malformed.
pub fn parse(record: &[u8]) -> Option<(u32, &[u8])> {
    let id = u32::from_ne_bytes(record.get(0..4)?.try_into().ok()?);
    let len = usize::from(u16::from_ne_bytes(record.get(4..6)?.try_into().ok()?));
    let rtp = record.get(8..8 + len)?;
    // RTP version 2, then 12 bytes and 4 per CSRC.
    let first = *rtp.first()?;
    if first >> 6 != 2 {
        return None;
    }
    let header = 12 + 4 * usize::from(first & 0x0f);
    Some((id, rtp.get(header..)?))
}

/// Drains `ring` until `stop`, writing stream `id`'s payload to `dir/<id>.ul`.
pub fn drain(
    mut ring: RingBuf<MapData>,
    dir: Option<PathBuf>,
    stop: &AtomicBool,
) -> std::io::Result<TapStats> {
    let mut files: StdMap<u32, BufWriter<File>> = StdMap::new();
    let mut stats = TapStats::default();
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
            if let Some(dir) = &dir {
                let file = match files.entry(id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let f = File::create(dir.join(format!("{id}.ul")))?;
                        e.insert(BufWriter::with_capacity(4096, f))
                    }
                };
                file.write_all(samples)?;
            }
        }
        stats.batches += u64::from(any);
        if stopping {
            break;
        }
        thread::sleep(PERIOD);
    }
    for f in files.values_mut() {
        f.flush()?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u32, rtp: &[u8]) -> Vec<u8> {
        let mut r = id.to_ne_bytes().to_vec();
        r.extend((rtp.len() as u16).to_ne_bytes());
        r.extend([0, 0]);
        r.extend(rtp);
        r.resize(8 + 256, 0);
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
