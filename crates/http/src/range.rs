//! Byte-range requests (RFC 9110 §14): `Range: bytes=a-b`, `a-` and `-n`, one or several.
//! Other units and malformed values are ignored (the full 200 is a correct answer); a
//! well-formed set of which no range hits the representation is 416.
//!
//! Abuse limits, as nginx's `max_ranges` and its "total larger than the file" check do it:
//! more than [`MAX_RANGES`] ranges, or satisfiable ranges that overlap (so the parts would add
//! up to more than the file), are answered with the whole representation (200) instead of
//! amplifying one request into many copies of the same bytes.

/// Most ranges served as `multipart/byteranges`; more and the Range header is ignored.
pub const MAX_RANGES: usize = 16;

/// What a Range header asks of a representation of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// Serve everything (no usable Range).
    Full,
    /// Serve these inclusive `(start, end)` ranges, in the order asked: one is a plain 206,
    /// several a `multipart/byteranges` 206.
    Partial(Vec<(u64, u64)>),
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// A number of the header; digits only. Too big for u64 saturates: a position past any file
/// is still a well-formed position (`bytes=1-99999999999999999999` means "to the end").
fn num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

/// One range-spec resolved against `len`: `Some(Some(range))` when satisfiable,
/// `Some(None)` when well-formed but outside, `None` when malformed.
fn spec(s: &str, len: u64) -> Option<Option<(u64, u64)>> {
    let (first, last) = s.split_once('-')?;
    if first.is_empty() {
        // Suffix: the last n bytes.
        let n = num(last)?;
        return Some((n > 0 && len > 0).then(|| (len.saturating_sub(n), len - 1)));
    }
    let start = num(first)?;
    let end = if last.is_empty() {
        u64::MAX
    } else {
        let e = num(last)?;
        if e < start {
            return None;
        }
        e
    };
    Some((start < len).then(|| (start, end.min(len - 1))))
}

/// The `Range` header `header` against a body of `len` bytes.
pub fn parse(header: &str, len: u64) -> RangeRequest {
    let header = header.trim();
    let Some(unit) = header.get(..6) else {
        return RangeRequest::Full;
    };
    if !unit.eq_ignore_ascii_case("bytes=") {
        return RangeRequest::Full;
    }
    let mut ranges = Vec::new();
    let mut count = 0;
    // Empty list elements are allowed and skipped (RFC 9110 §5.6.1).
    for item in header[6..]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        count += 1;
        if count > MAX_RANGES {
            return RangeRequest::Full;
        }
        match spec(item, len) {
            None => return RangeRequest::Full,
            Some(Some(r)) => ranges.push(r),
            Some(None) => {}
        }
    }
    if count == 0 {
        return RangeRequest::Full;
    }
    if ranges.is_empty() {
        return RangeRequest::Unsatisfiable;
    }
    let mut sorted = ranges.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[1].0 <= w[0].1) {
        return RangeRequest::Full;
    }
    RangeRequest::Partial(ranges)
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::*;
    use super::*;

    fn one(start: u64, end: u64) -> RangeRequest {
        Partial(vec![(start, end)])
    }

    #[test]
    fn forms() {
        assert_eq!(parse("bytes=0-0", 10), one(0, 0));
        assert_eq!(parse("bytes=2-", 10), one(2, 9));
        assert_eq!(parse("bytes=2-100", 10), one(2, 9));
        assert_eq!(parse("bytes=-3", 10), one(7, 9));
        assert_eq!(parse("bytes=-30", 10), one(0, 9));
        assert_eq!(parse("Bytes=1-2", 10), one(1, 2));
        assert_eq!(parse("bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse("bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse("bytes=5-2", 10), Full);
        assert_eq!(parse("items=0-1", 10), Full);
        assert_eq!(parse("bytes=x-1", 10), Full);
        assert_eq!(parse("bytes=+1-2", 10), Full);
        assert_eq!(parse("bytes=", 10), Full);
        assert_eq!(parse("bytes", 10), Full);
    }

    #[test]
    fn huge_numbers_saturate() {
        assert_eq!(parse("bytes=1-99999999999999999999", 10), one(1, 9));
        assert_eq!(parse("bytes=99999999999999999999-", 10), Unsatisfiable);
        assert_eq!(parse("bytes=-99999999999999999999", 10), one(0, 9));
    }

    #[test]
    fn several() {
        assert_eq!(
            parse("bytes=0-1, 4-5,,8-", 10),
            Partial(vec![(0, 1), (4, 5), (8, 9)])
        );
        // Order as asked; an unsatisfiable member is dropped, not fatal.
        assert_eq!(
            parse("bytes=6-7,0-1,20-30", 10),
            Partial(vec![(6, 7), (0, 1)])
        );
        assert_eq!(parse("bytes=20-30,40-", 10), Unsatisfiable);
        // A malformed member makes the whole header ignorable.
        assert_eq!(parse("bytes=0-1,x", 10), Full);
    }

    #[test]
    fn abusive_sets_get_the_whole_file() {
        assert_eq!(parse("bytes=0-5,3-8", 10), Full, "overlap");
        assert_eq!(parse("bytes=0-0,0-0", 10), Full, "repeat");
        assert_eq!(parse("bytes=-5,0-", 10), Full, "suffix overlaps");
        let many: Vec<String> = (0..17).map(|i| format!("{i}-{i}")).collect();
        assert_eq!(parse(&format!("bytes={}", many.join(",")), 100), Full);
        let sixteen: Vec<String> = (0..16).map(|i| format!("{}-{}", 2 * i, 2 * i)).collect();
        match parse(&format!("bytes={}", sixteen.join(",")), 100) {
            Partial(r) => assert_eq!(r.len(), 16),
            other => panic!("{other:?}"),
        }
    }
}
