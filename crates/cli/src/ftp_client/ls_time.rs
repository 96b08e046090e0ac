//! Modification times shown as `ls -l` shows them, in local time: `Dec  6 06:53` within half
//! a year of now, `Dec  6  2025` otherwise. An MLSD time (`YYYYMMDDHHMMSS[.sss]`, UTC) is
//! converted; anything else (a LIST line's own text) is shown as the server gave it.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// What `ls` calls recent: within about six months.
const HALF_YEAR: i64 = 365 * 86_400 / 2;

/// Broken-down time: (year, month 1–12, day, hour, minute).
pub(super) type Civil = (i64, u32, u32, u32, u32);

pub(super) fn show(raw: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    format(raw, now, local)
}

/// `raw` as `ls -l` would show it at `now`, broken down by `civil`.
pub(super) fn format(raw: &str, now: i64, civil: impl Fn(i64) -> Civil) -> String {
    let Some(t) = parse_mlsd(raw) else {
        return raw.to_string();
    };
    let (y, mo, d, h, mi) = civil(t);
    let month = MONTHS[(mo as usize).clamp(1, 12) - 1];
    if (now - t).abs() < HALF_YEAR {
        format!("{month} {d:>2} {h:02}:{mi:02}")
    } else {
        format!("{month} {d:>2}  {y}")
    }
}

/// Seconds since the epoch of an MLSD `YYYYMMDDHHMMSS` (fractions ignored).
pub(super) fn parse_mlsd(raw: &str) -> Option<i64> {
    let digits = raw.split('.').next()?;
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| digits[a..b].parse::<i64>().ok();
    let (y, mo, d) = (n(0, 4)?, n(4, 6)?, n(6, 8)?);
    let (h, mi, s) = (n(8, 10)?, n(10, 12)?, n(12, 14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Broken down in the local time zone (localtime_r: TZ and /etc/localtime).
fn local(t: i64) -> Civil {
    // SAFETY: a `tm` is plain integers (and a pointer that may be null): all zeros is valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let tt = t as libc::time_t;
    // SAFETY: localtime_r with a valid time and an out-struct of ours.
    if unsafe { libc::localtime_r(&tt, &mut tm) }.is_null() {
        return utc(t);
    }
    (
        i64::from(tm.tm_year) + 1900,
        (tm.tm_mon + 1) as u32,
        tm.tm_mday as u32,
        tm.tm_hour as u32,
        tm.tm_min as u32,
    )
}

/// Broken down in UTC (the inverse of `days_from_civil`).
pub(super) fn utc(t: i64) -> Civil {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (secs / 3600) as u32, (secs % 3600 / 60) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlsd_times_read_like_ls() {
        let now = parse_mlsd("20261206085000").unwrap();
        assert_eq!(format("20261206065327", now, utc), "Dec  6 06:53");
        assert_eq!(format("20261206065327.123", now, utc), "Dec  6 06:53");
        assert_eq!(format("20251206065327", now, utc), "Dec  6  2025");
        assert_eq!(format("20260101000000", now, utc), "Jan  1  2026");
        assert_eq!(format("20260801120000", now, utc), "Aug  1 12:00");
        // A LIST line's own text, or nonsense, is left as it came.
        assert_eq!(format("Jan  2 12:00", now, utc), "Jan  2 12:00");
        assert_eq!(format("20261306065327", now, utc), "20261306065327");
        // The epoch arithmetic round-trips, leap days included.
        for s in ["19700101000000", "20000229235959", "20241231120000"] {
            let t = parse_mlsd(s).unwrap();
            let (y, mo, d, h, mi) = utc(t);
            assert_eq!(format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}"), s[..12]);
        }
    }
}
