//! What `RedisRateLimiter`'s script replies mean: the identity's Redis key digest, the reply's RESP
//! framing, and the reply turned into a [`Decision`] through the same [`Gcra::decide`] as the
//! in-process limiter. No I/O: the Python shell sends the request and hands the reply's bytes here.
//!
//! The script returns, per rate, `d` = µs until the bucket is full before this request (`TAT - now`,
//! at least 0), or `-1 - d` when that rate refuses. That is the whole state GCRA needs: the bucket's
//! TAT is `d` on a clock whose `now` is 0, so `decide(d, 0, cost)` gives remaining, reset and retry
//! exactly as in-process, in µs.

use super::decision::{Decision, Quota};
use super::gcra::{Gcra, Outcome, MAX_RATES};

/// Bytes per rate in a tier's packed description: four little-endian u64 — limit, window (s),
/// interval (µs), tau (µs).
pub const PACKED_RATE_BYTES: usize = 32;

/// The digest under which an identity is stored in Redis: BLAKE3 of its bytes truncated to 128 bits,
/// as 32 lowercase hex digits. Unkeyed on purpose: every host must derive the same Redis key.
pub fn key_digest(key: &[u8]) -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = blake3::hash(key);
    let mut out = [0u8; 32];
    for (i, byte) in hash.as_bytes()[..16].iter().enumerate() {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 15)];
    }
    out
}

/// The script's reply for a tier of `n` rates: `:v\r\n` when `n == 1`, else `*n\r\n` followed by
/// exactly `n` `:v\r\n` lines, and nothing else; `None` otherwise.
pub fn parse_script_reply(data: &[u8], n: usize) -> Option<[i64; MAX_RATES]> {
    fn int_line(data: &[u8], pos: usize, tag: u8) -> Option<(i64, usize)> {
        let rest = data.get(pos..)?;
        if rest.first() != Some(&tag) {
            return None;
        }
        let end = memchr::memchr(b'\r', rest)?;
        if rest.get(end + 1) != Some(&b'\n') {
            return None;
        }
        let v = std::str::from_utf8(&rest[1..end]).ok()?.parse().ok()?;
        Some((v, pos + end + 2))
    }
    if n == 0 || n > MAX_RATES {
        return None;
    }
    let mut out = [0i64; MAX_RATES];
    let mut pos = 0;
    if n > 1 {
        let (count, next) = int_line(data, 0, b'*')?;
        if usize::try_from(count).ok()? != n {
            return None;
        }
        pos = next;
    }
    for slot in &mut out[..n] {
        let (v, next) = int_line(data, pos, b':')?;
        *slot = v;
        pos = next;
    }
    (pos == data.len()).then_some(out)
}

/// The decision in a script reply `data` for the tier whose rates are `packed` (see
/// [`PACKED_RATE_BYTES`]), asked for `cost` tokens, with each rate's quota. The decision's `tier` is
/// 0: the caller knows the tier by name. As in [`check_many`](super::gcra::check_many), when some
/// rate refuses, the rates that would admit report their state as it is (nothing was taken).
///
/// `None` when the bytes are not such a reply: bad framing, a rate count other than the packed one,
/// a zero interval, or a verdict the GCRA does not reach from the same `d` (a reply of another script).
pub fn decide_reply(packed: &[u8], cost: u64, data: &[u8]) -> Option<(Decision, [Quota; MAX_RATES])> {
    if !packed.len().is_multiple_of(PACKED_RATE_BYTES) {
        return None;
    }
    let n = packed.len() / PACKED_RATE_BYTES;
    let values = parse_script_reply(data, n)?;
    let allowed = values[..n].iter().all(|&v| v >= 0);
    let mut d = Decision::new(0, n);
    d.allowed = allowed;
    let mut quotas = [Quota::default(); MAX_RATES];
    let word = |r: &[u8], i: usize| u64::from_le_bytes(r[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]));
    for (i, r) in packed.chunks_exact(PACKED_RATE_BYTES).enumerate() {
        quotas[i] = Quota {
            limit: word(r, 0),
            window_s: word(r, 1),
        };
        let gcra = Gcra::from_parts(word(r, 2), word(r, 3))?;
        // a cost whose tokens overflow the clock is no request the script could have answered
        cost.checked_mul(gcra.interval_ns())?;
        let v = values[i];
        let refuses = v < 0;
        // -1 - v cannot overflow for a negative i64
        let until_full = u64::try_from(if refuses { -1 - v } else { v }).ok()?;
        let taken = if allowed || refuses { cost } else { 0 };
        let (o, _) = gcra.decide(until_full, 0, taken);
        if o.allowed == refuses {
            return None;
        }
        // saturating: a stored TAT absurdly far ahead (a key set by hand) is a very long wait, not a
        // malformed reply
        d.rates[i] = Outcome {
            reset_after_ns: o.reset_after_ns.saturating_mul(1000),
            retry_after_ns: o.retry_after_ns.saturating_mul(1000),
            ..o
        };
    }
    d.pick_binding();
    Some((d, quotas))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    fn packed(rates: &[(u64, u64, u64, u64)]) -> Vec<u8> {
        rates
            .iter()
            .flat_map(|&(q, w, i, t)| [q, w, i, t])
            .flat_map(u64::to_le_bytes)
            .collect()
    }

    #[test]
    fn framing() {
        assert_eq!(parse_script_reply(b":5\r\n", 1).map(|v| v[0]), Some(5));
        assert_eq!(parse_script_reply(b":-12\r\n", 1).map(|v| v[0]), Some(-12));
        let two = parse_script_reply(b"*2\r\n:1\r\n:-3\r\n", 2).unwrap();
        assert_eq!(&two[..2], &[1, -3]);
        for (bad, n) in [
            (&b":5\r\n"[..], 0),
            (b":5\r\n", 5),
            (b":5\r\n:6\r\n", 1),
            (b":5\n", 1),
            (b":5\r", 1),
            (b"$1\r\n5\r\n", 1),
            (b":x\r\n", 1),
            (b"*3\r\n:1\r\n:2\r\n", 2),
            (b"*2\r\n:1\r\n", 2),
            (b":1\r\n:2\r\n", 2),
            (b"-NOSCRIPT\r\n", 1),
        ] {
            assert!(parse_script_reply(bad, n).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_reply_decides_as_the_in_process_gcra() {
        // 10 per second, burst 5: interval 100 ms, tau 500 ms; the same bucket in ns and in µs
        let g = Gcra::new(10, 1_000_000_000, 5).unwrap();
        let spec = packed(&[(5, 1, 100_000, 500_000)]);
        let cell = AtomicU64::new(0);
        let now = 1_000_000_000_000;
        for _ in 0..6 {
            let tat = cell.load(std::sync::atomic::Ordering::Relaxed);
            let until_full_us = (tat.saturating_sub(now) / 1000) as i64;
            let local = g.check(&cell, now, 1);
            let v = if local.allowed {
                until_full_us
            } else {
                -1 - until_full_us
            };
            let (d, q) = decide_reply(&spec, 1, format!(":{v}\r\n").as_bytes()).unwrap();
            assert_eq!((d.allowed, d.len, d.summary()), (local.allowed, 1, local));
            assert_eq!(q[0], Quota { limit: 5, window_s: 1 });
        }
    }

    #[test]
    fn multi_rate_refusal_reports_the_others_as_they_are() {
        let spec = packed(&[(10, 1, 100_000, 1_000_000), (12, 60, 5_000_000, 60_000_000)]);
        // the first rate is 200 ms from full and would admit; the second refuses (60 s from full)
        let (d, _) = decide_reply(&spec, 1, b"*2\r\n:200000\r\n:-60000001\r\n").unwrap();
        assert!(!d.allowed);
        assert_eq!(d.binding, 1);
        assert_eq!(d.rates[0].remaining, 8, "nothing taken: (1 s - 200 ms) / 100 ms");
        assert_eq!(d.rates[0].retry_after_ns, 0);
        assert_eq!(d.rates[1].retry_after_ns, 5_000_000_000);
        assert_eq!(d.retry_after_ns(), 5_000_000_000);
        let (d, _) = decide_reply(&spec, 1, b"*2\r\n:0\r\n:0\r\n").unwrap();
        assert!(d.allowed);
        assert_eq!((d.binding, d.rates[0].remaining, d.rates[1].remaining), (0, 9, 11));
    }

    #[test]
    fn not_such_a_reply() {
        let one = packed(&[(5, 1, 100_000, 500_000)]);
        assert!(decide_reply(&one[..31], 1, b":0\r\n").is_none(), "packed length");
        assert!(decide_reply(&[], 1, b":0\r\n").is_none(), "no rates");
        assert!(decide_reply(&one, 1, b"*1\r\n:0\r\n").is_none(), "rate count");
        assert!(
            decide_reply(&packed(&[(5, 1, 0, 0)]), 1, b":0\r\n").is_none(),
            "zero interval"
        );
        assert!(
            decide_reply(&one, 1, b":450000\r\n").is_none(),
            "admitted, yet no token is left"
        );
        assert!(
            decide_reply(&one, 1, b":-1\r\n").is_none(),
            "refused, yet the bucket is full"
        );
        assert!(decide_reply(&one, u64::MAX, b":-1\r\n").is_none(), "cost overflows");
        let (d, _) = decide_reply(&one, 1, format!(":{}\r\n", -1 - i64::MAX / 2).as_bytes()).unwrap();
        assert_eq!(d.summary().retry_after_ns, u64::MAX, "a far TAT saturates");
    }

    #[test]
    fn key_digest_is_blake3_128_in_hex() {
        let hex = key_digest(b"user_1");
        assert!(hex.iter().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(&hex[..], &blake3::hash(b"user_1").to_hex().as_bytes()[..32]);
    }
}
