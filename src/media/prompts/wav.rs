//! Minimal, panic-free RIFF/WAVE reader for prompt files.
//!
//! hound refuses G.711 WAVs (format tags 6 and 7), which is what recorded telephony prompts
//! often are, so the few chunks we need (`fmt `, `data`) are parsed here for every format.
//! Only what a prompt may be is accepted: 8000 Hz, mono, 16-bit PCM or 8-bit G.711.

use super::Reason;

/// Decoded audio of one prompt file, still in its stored encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Audio {
    Pcm16(Vec<i16>),
    Ulaw(Vec<u8>),
    Alaw(Vec<u8>),
}

const FORMAT_PCM: u16 = 1;
const FORMAT_ALAW: u16 = 6;
const FORMAT_ULAW: u16 = 7;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Bytes of `fmt ` up to and including bits-per-sample (WAVEFORMAT + wBitsPerSample).
const FMT_MIN_LEN: usize = 16;
/// WAVEFORMATEXTENSIBLE: 18 bytes of WAVEFORMATEX + 22 of extension; the sub-format
/// GUID starts at 24 and its first two bytes are the real format tag.
const FMT_EXTENSIBLE_LEN: usize = 40;
const FMT_SUBFORMAT_AT: usize = 24;

struct Fmt {
    tag: u16,
    channels: u16,
    sample_rate: u32,
    bits: u16,
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn fourcc(b: &[u8], at: usize) -> Option<[u8; 4]> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some([s[0], s[1], s[2], s[3]])
}

fn parse_fmt(body: &[u8]) -> Result<Fmt, Reason> {
    if body.len() < FMT_MIN_LEN {
        return Err(Reason::BadFmt);
    }
    let field16 = |at| le_u16(body, at).ok_or(Reason::BadFmt);
    let mut tag = field16(0)?;
    if tag == FORMAT_EXTENSIBLE {
        // The header tag only says "see the GUID"; an extensible file too short to carry
        // it is damaged rather than of an unknown format.
        if body.len() < FMT_EXTENSIBLE_LEN {
            return Err(Reason::BadFmt);
        }
        tag = field16(FMT_SUBFORMAT_AT)?;
    }
    Ok(Fmt {
        tag,
        channels: field16(2)?,
        sample_rate: le_u32(body, 4).ok_or(Reason::BadFmt)?,
        bits: field16(14)?,
    })
}

/// Checks the format is one a prompt may have; the order gives the admin the most useful
/// complaint first (a 44.1 kHz stereo MP3-turned-WAV is "wrong rate" before "stereo").
fn check_fmt(fmt: &Fmt) -> Result<(), Reason> {
    if !matches!(fmt.tag, FORMAT_PCM | FORMAT_ALAW | FORMAT_ULAW) {
        return Err(Reason::Encoding { tag: fmt.tag });
    }
    if fmt.sample_rate != 8000 {
        return Err(Reason::SampleRate {
            hz: fmt.sample_rate,
        });
    }
    if fmt.channels != 1 {
        return Err(Reason::Channels {
            channels: fmt.channels,
        });
    }
    let expected_bits = if fmt.tag == FORMAT_PCM { 16 } else { 8 };
    if fmt.bits != expected_bits {
        return Err(Reason::BitsPerSample { bits: fmt.bits });
    }
    Ok(())
}

fn decode_data(fmt: &Fmt, data: &[u8]) -> Result<Audio, Reason> {
    if data.is_empty() {
        return Err(Reason::NoAudio);
    }
    match fmt.tag {
        FORMAT_ALAW => Ok(Audio::Alaw(data.to_vec())),
        FORMAT_ULAW => Ok(Audio::Ulaw(data.to_vec())),
        _ => {
            if !data.len().is_multiple_of(2) {
                return Err(Reason::OddPcmLength { bytes: data.len() });
            }
            let samples = data
                .chunks_exact(2)
                .map(|s| i16::from_le_bytes([s[0], s[1]]))
                .collect();
            Ok(Audio::Pcm16(samples))
        }
    }
}

/// Parses a whole WAV file held in memory.
pub(super) fn parse(bytes: &[u8]) -> Result<Audio, Reason> {
    if bytes.is_empty() {
        return Err(Reason::Empty);
    }
    if fourcc(bytes, 0) != Some(*b"RIFF") || fourcc(bytes, 8) != Some(*b"WAVE") {
        return Err(Reason::NotWav);
    }
    // The RIFF size field is ignored: editors often get it wrong, the chunks are what count.
    let mut at = 12usize;
    let mut fmt: Option<Fmt> = None;
    while let (Some(id), Some(len)) = (fourcc(bytes, at), le_u32(bytes, at + 4)) {
        let start = at + 8;
        let declared = usize::try_from(len).unwrap_or(usize::MAX);
        let available = bytes.len() - start;
        if declared > available {
            return Err(Reason::Truncated {
                chunk: id,
                declared: len,
                available,
            });
        }
        let body = &bytes[start..start + declared];
        match &id {
            b"fmt " => {
                let parsed = parse_fmt(body)?;
                check_fmt(&parsed)?;
                fmt = Some(parsed);
            }
            b"data" => {
                // `fmt ` must precede `data` (RIFF WAVE spec); without it the bytes are
                // meaningless.
                let fmt = fmt.as_ref().ok_or(Reason::MissingFmt)?;
                return decode_data(fmt, body);
            }
            _ => {} // LIST, fact, cue…: metadata we do not need.
        }
        // Chunks are word-aligned: an odd-sized body is followed by one pad byte.
        at = start + declared + (declared & 1);
    }
    Err(if fmt.is_none() {
        Reason::MissingFmt
    } else {
        Reason::MissingData
    })
}
