//! RFC 3339 UTC timestamps with microseconds, without a date crate.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SS`, the part of a timestamp that changes once a second.
type SecondText = [u8; 19];

thread_local! {
    // The date arithmetic is cheap, but caching the text per second keeps it to a copy.
    static CACHE: Cell<(u64, SecondText)> = const { Cell::new((u64::MAX, [0; 19])) };
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
///
/// Howard Hinnant's `civil_from_days`: shifts the year to start in March so the leap day is
/// the last day of the year, then splits into 400-year eras of 146 097 days.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn two(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

fn second_text(secs: u64) -> SecondText {
    let days = (secs / 86_400) as i64;
    let rem = (secs % 86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    let mut t = *b"0000-00-00T00:00:00";
    // Years past 9999 do not fit RFC 3339; clamp rather than print garbage.
    let y = year.clamp(0, 9999) as u32;
    two(&mut t[0..2], y / 100);
    two(&mut t[2..4], y % 100);
    two(&mut t[5..7], month);
    two(&mut t[8..10], day);
    two(&mut t[11..13], rem / 3600);
    two(&mut t[14..16], rem / 60 % 60);
    two(&mut t[17..19], rem % 60);
    t
}

/// Appends `2026-11-25T11:39:19.123456Z` for `secs`/`micros` since the Unix epoch.
pub(crate) fn write_rfc3339(out: &mut Vec<u8>, secs: u64, micros: u32) {
    let text = CACHE.with(|c| {
        let (cached_secs, text) = c.get();
        if cached_secs == secs {
            text
        } else {
            let text = second_text(secs);
            c.set((secs, text));
            text
        }
    });
    out.extend_from_slice(&text);
    let mut frac = *b".000000Z";
    let mut m = micros;
    for slot in frac[1..7].iter_mut().rev() {
        *slot = b'0' + (m % 10) as u8;
        m /= 10;
    }
    out.extend_from_slice(&frac);
}

/// Appends the current time; a clock before 1970 prints as the epoch.
pub(crate) fn write_now(out: &mut Vec<u8>) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    write_rfc3339(out, d.as_secs(), d.subsec_micros());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(secs: u64, micros: u32) -> String {
        let mut v = Vec::new();
        write_rfc3339(&mut v, secs, micros);
        String::from_utf8(v).expect("ASCII")
    }

    #[test]
    fn known_instants() {
        // Reference values from GNU `date -u -d @SECS`.
        assert_eq!(fmt(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(fmt(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(fmt(1_764_070_759, 123_456), "2025-11-25T11:39:19.123456Z");
        assert_eq!(fmt(1_795_606_759, 999_999), "2026-11-25T11:39:19.999999Z");
        assert_eq!(fmt(253_402_300_799, 0), "9999-12-31T23:59:59.000000Z");
        // Same second again exercises the cache.
        assert_eq!(fmt(1_795_606_759, 1), "2026-11-25T11:39:19.000001Z");
    }

    #[test]
    fn civil_days_are_consecutive() {
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        let mut prev = civil_from_days(-1);
        for days in 0..(400 * 366) {
            let cur = civil_from_days(days);
            let (py, pm, pd) = prev;
            let next_day = cur == (py, pm, pd + 1);
            let next_month = cur == (py, pm + 1, 1) && pd >= 28;
            let next_year = cur == (py + 1, 1, 1) && (pm, pd) == (12, 31);
            assert!(next_day || next_month || next_year, "{prev:?} -> {cur:?}");
            if cur.1 == 2 && cur.2 == 29 {
                let y = cur.0;
                assert!(
                    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0),
                    "{y} is not leap"
                );
            }
            prev = cur;
        }
    }
}
