//! G.711, the only audio coding on the router's legs: which law a leg uses, its silence,
//! and sample conversion.
//!
//! Both directions are table lookups. Decoding: 256 samples per law. Encoding depends on
//! fewer bits than the sample has (A-law on the top 13, µ-law on the top 14: the laws'
//! finest step is 8 and 4), so the tables hold 8 KiB and 16 KiB, built at compile time by
//! the same segment arithmetic as `audio-codec-algorithms` (a test checks all 65,536
//! samples against it, bit for bit). A lookup is about four times cheaper than the
//! arithmetic per sample, and the mixer and the recorder encode and decode every sample.

/// The two G.711 companding laws (RTP payload types 0 and 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711Law {
    /// PCMU, payload type 0 (North America, Japan; some SIP trunks).
    Ulaw,
    /// PCMA, payload type 8 (Europe: what French trunks normally offer).
    Alaw,
}

impl G711Law {
    /// The byte encoding digital silence (linear 0) in this law.
    pub const fn silence_byte(self) -> u8 {
        match self {
            G711Law::Ulaw => 0xFF,
            G711Law::Alaw => 0xD5,
        }
    }

    /// The other law.
    pub const fn other(self) -> G711Law {
        match self {
            G711Law::Ulaw => G711Law::Alaw,
            G711Law::Alaw => G711Law::Ulaw,
        }
    }

    /// Decodes one byte to a linear 16-bit sample.
    #[inline]
    pub fn decode(self, byte: u8) -> i16 {
        self.decode_table()[usize::from(byte)]
    }

    /// Encodes one linear 16-bit sample.
    #[inline]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            G711Law::Ulaw => ULAW_ENCODE[usize::from(sample as u16 >> 2)],
            G711Law::Alaw => ALAW_ENCODE[usize::from(sample as u16 >> 3)],
        }
    }

    /// Decodes `payload` onto the end of `out` (the law chosen once, not per sample).
    pub fn decode_into(self, payload: &[u8], out: &mut Vec<i16>) {
        let table = self.decode_table();
        out.extend(payload.iter().map(|&b| table[usize::from(b)]));
    }

    /// The 256 linear samples the bytes decode to.
    pub fn decode_table(self) -> &'static [i16; 256] {
        match self {
            G711Law::Ulaw => &ULAW_DECODE,
            G711Law::Alaw => &ALAW_DECODE,
        }
    }
}

/// µ-law byte → linear sample (ITU-T G.711 table 2).
static ULAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        let b = !(i as u8);
        let magnitude = ((((b & 0x0F) as i32) << 3) + 0x84) << ((b >> 4) & 0x07);
        let value = magnitude - 0x84;
        t[i] = if b & 0x80 != 0 { -value } else { value } as i16;
        i += 1;
    }
    t
};

/// A-law byte → linear sample (ITU-T G.711 table 1).
static ALAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        let b = (i as u8) ^ 0x55;
        let segment = (b >> 4) & 0x07;
        let mantissa = ((b & 0x0F) as i32) << 4;
        let value = match segment {
            0 => mantissa + 8,
            1 => mantissa + 0x108,
            s => (mantissa + 0x108) << (s - 1),
        };
        t[i] = if b & 0x80 != 0 { value } else { -value } as i16;
        i += 1;
    }
    t
};

/// Top 14 bits of a sample (`sample as u16 >> 2`) → µ-law byte.
static ULAW_ENCODE: [u8; 1 << 14] = {
    let mut t = [0u8; 1 << 14];
    let mut i = 0;
    while i < t.len() {
        // Sign-extend the 14-bit index back to the sample's `>> 2`.
        let shifted = ((i << 2) as u16 as i16) >> 2;
        let negative = shifted < 0;
        let magnitude = if negative { !shifted } else { shifted } as u32;
        let input = magnitude + 33;
        let segment = (u32::BITS - input.leading_zeros()).saturating_sub(6);
        let code = if segment >= 8 {
            0x7F
        } else {
            (segment << 4) | ((input >> (segment + 1)) & 0x0F)
        };
        let sign = if negative { 0x80 } else { 0 };
        t[i] = (sign | code as u8) ^ 0xFF;
        i += 1;
    }
    t
};

/// Top 13 bits of a sample (`sample as u16 >> 3`) → A-law byte.
static ALAW_ENCODE: [u8; 1 << 13] = {
    let mut t = [0u8; 1 << 13];
    let mut i = 0;
    while i < t.len() {
        let shifted = ((i << 3) as u16 as i16) >> 3;
        let negative = shifted < 0;
        let input = if negative { !shifted } else { shifted } as u32;
        let segment = (u32::BITS - (input | 0x1F).leading_zeros()) - 5;
        let shift = if segment < 2 { 1 } else { segment };
        let code = (segment << 4) | ((input >> shift) & 0x0F);
        let sign = if negative { 0x80 } else { 0 };
        t[i] = (sign | code as u8) ^ 0xD5;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables give, for every sample and every byte, what the arithmetic of
    /// `audio-codec-algorithms` (the code they replace) gives.
    #[test]
    fn tables_match_the_reference_codec_bit_for_bit() {
        for sample in i16::MIN..=i16::MAX {
            assert_eq!(
                G711Law::Ulaw.encode(sample),
                audio_codec_algorithms::encode_ulaw(sample),
                "µ-law {sample}"
            );
            assert_eq!(
                G711Law::Alaw.encode(sample),
                audio_codec_algorithms::encode_alaw(sample),
                "A-law {sample}"
            );
        }
        for byte in 0..=u8::MAX {
            assert_eq!(
                G711Law::Ulaw.decode(byte),
                audio_codec_algorithms::decode_ulaw(byte),
                "µ-law {byte:#x}"
            );
            assert_eq!(
                G711Law::Alaw.decode(byte),
                audio_codec_algorithms::decode_alaw(byte),
                "A-law {byte:#x}"
            );
        }
        let mut out = Vec::new();
        G711Law::Alaw.decode_into(&[0xD5, 0x55, 0x2A], &mut out);
        assert_eq!(out, [8, -8, -32256]);
    }
}
