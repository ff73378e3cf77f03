//! Tests of prompt loading, encoding and framing.
