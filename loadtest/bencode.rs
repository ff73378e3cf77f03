//! Bencode, the encoding of rtpengine's ng control protocol: what `loadtest/mediagen` (the
//! client) and `loadtest/kernel_relay` (a minimal ng server) share.

use std::collections::BTreeMap;

use anyhow::{Context, bail};

/// A bencoded value (what ng messages are made of).
#[derive(Debug, Clone, PartialEq)]
pub enum Bencode {
    Bytes(Vec<u8>),
    Int(i64),
    List(Vec<Bencode>),
    Dict(BTreeMap<Vec<u8>, Bencode>),
}

impl Bencode {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Bencode::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Bencode::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Bencode::List(l) => {
                out.push(b'l');
                l.iter().for_each(|v| v.encode(out));
                out.push(b'e');
            }
            Bencode::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    Bencode::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decodes one value from the start of `input`; the value and what is left.
    pub fn decode(input: &[u8]) -> anyhow::Result<(Bencode, &[u8])> {
        match input.first() {
            Some(b'i') => {
                let end = input
                    .iter()
                    .position(|&b| b == b'e')
                    .context("unterminated int")?;
                let i = std::str::from_utf8(&input[1..end])?.parse()?;
                Ok((Bencode::Int(i), &input[end + 1..]))
            }
            Some(b'l') | Some(b'd') => {
                let dict = input[0] == b'd';
                let mut rest = &input[1..];
                let (mut list, mut map) = (Vec::new(), BTreeMap::new());
                while rest.first() != Some(&b'e') {
                    if rest.is_empty() {
                        bail!("unterminated list or dictionary");
                    }
                    let (v, r) = Bencode::decode(rest)?;
                    if dict {
                        let Bencode::Bytes(k) = v else {
                            bail!("dictionary key is not a string");
                        };
                        let (v, r) = Bencode::decode(r)?;
                        map.insert(k, v);
                        rest = r;
                    } else {
                        list.push(v);
                        rest = r;
                    }
                }
                let v = if dict {
                    Bencode::Dict(map)
                } else {
                    Bencode::List(list)
                };
                Ok((v, &rest[1..]))
            }
            Some(b'0'..=b'9') => {
                let colon = input.iter().position(|&b| b == b':').context("no colon")?;
                let len: usize = std::str::from_utf8(&input[..colon])?.parse()?;
                let body = input
                    .get(colon + 1..colon + 1 + len)
                    .context("string past the end")?;
                Ok((Bencode::Bytes(body.to_vec()), &input[colon + 1 + len..]))
            }
            _ => bail!("not bencode"),
        }
    }

    /// The string value of `key` in a dictionary.
    pub fn get_str(&self, key: &str) -> Option<String> {
        match self {
            Bencode::Dict(d) => match d.get(key.as_bytes())? {
                Bencode::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A dictionary of string keys.
pub fn dict(entries: &[(&str, Bencode)]) -> Bencode {
    Bencode::Dict(
        entries
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
            .collect(),
    )
}

/// A byte string.
pub fn s(text: &str) -> Bencode {
    Bencode::Bytes(text.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bencode_round_trip() {
        let v = dict(&[
            ("command", s("offer")),
            ("replace", Bencode::List(vec![s("origin")])),
            ("n", Bencode::Int(-3)),
        ]);
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(out, b"d7:command5:offer1:ni-3e7:replacel6:originee");
        let (back, rest) = Bencode::decode(&out).unwrap();
        assert_eq!((back, rest.len()), (v, 0));
    }

    #[test]
    fn truncated_bencode_is_an_error_not_a_panic() {
        for bad in [&b"d3:sdp"[..], b"5:ab", b"i12", b"l", b"x"] {
            assert!(Bencode::decode(bad).is_err(), "{bad:?}");
        }
    }
}
