//! The one wire encoding for values that cross a process boundary (spawn arguments, results,
//! pipe and queue messages): postcard, a compact, fast serde format.

use serde::{de::DeserializeOwned, Serialize};

/// Append the encoding of `value` to `out`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> postcard::Result<()> {
    let taken = std::mem::take(out);
    *out = postcard::to_extend(value, taken)?;
    Ok(())
}

/// Encode `value` into `buf` if it fits: `Ok(None)` if it does not (then use
/// [`encode_into`]). A stack buffer spares a small message the heap and the growth checks.
pub(crate) fn encode_small<'a, T: Serialize + ?Sized>(
    value: &T,
    buf: &'a mut [u8],
) -> postcard::Result<Option<&'a mut [u8]>> {
    match postcard::to_slice(value, buf) {
        Ok(b) => Ok(Some(b)),
        Err(postcard::Error::SerializeBufferFull) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Encode `value` into a fresh buffer.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> postcard::Result<Vec<u8>> {
    postcard::to_stdvec(value)
}

/// Decode a value; trailing bytes are an error (they mean a framing bug or corruption).
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> postcard::Result<T> {
    let (v, rest) = postcard::take_from_bytes(bytes)?;
    if !rest.is_empty() {
        return Err(postcard::Error::DeserializeBadEncoding);
    }
    Ok(v)
}
