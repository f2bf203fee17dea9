//! The audit line: one JSON object per request, with the fields of DESIGN §3 under their
//! OpenTelemetry names where OpenTelemetry has one.
//!
//! Both audit sinks write it — the `bastion.audit` logger's `JSONFormatter` and the direct file
//! sink of `AuditLog(file=…)` — so the field names, their order, how a request's reason is named
//! and the line's shape are written here once. The writer thread formats a whole batch of
//! requests in one call: a JSON line costs a fraction of a microsecond here, against tens in
//! Python (a dict, the encoder, the timestamp).

use std::borrow::Cow;

use crate::json::write_str;

mod entry;
pub use entry::{Entry, Line};

/// The fields' output names, in output order ([`FIELD_NAMES`]), and each as the line writes it before
/// its value (`,"name":`, the names need no escape).
macro_rules! field_names {
    ($($name:literal),* $(,)?) => {
        /// Output names of the fields, in output order.
        pub const FIELD_NAMES: [&str; FIELDS] = [$($name),*];
        const KEYS: [&str; FIELDS] = [$(concat!(",\"", $name, "\":")),*];
    };
}

field_names!(
    "request.id",
    "http.request.method",
    "url.path",
    "http.route",
    "http.response.status_code",
    "client.address",
    "enduser.id",
    "user.roles",
    "bastion.auth.scopes",
    "bastion.auth.token_type",
    "bastion.auth.token_id",
    "bastion.auth.reason",
    "error.type",
    "bastion.ratelimit.tier",
    "bastion.ratelimit.remaining",
    "duration_ms",
);

/// How many fields a line has.
pub const FIELDS: usize = 16;

/// Where each field sits in a [`Fields`] array.
pub mod at {
    pub const REQUEST_ID: usize = 0;
    pub const METHOD: usize = 1;
    pub const PATH: usize = 2;
    pub const ROUTE: usize = 3;
    pub const STATUS: usize = 4;
    pub const CLIENT_ADDRESS: usize = 5;
    pub const ENDUSER_ID: usize = 6;
    pub const ROLES: usize = 7;
    pub const SCOPES: usize = 8;
    pub const TOKEN_TYPE: usize = 9;
    pub const TOKEN_ID: usize = 10;
    pub const REASON: usize = 11;
    pub const ERROR_TYPE: usize = 12;
    pub const TIER: usize = 13;
    pub const REMAINING: usize = 14;
    pub const DURATION_MS: usize = 15;
}

/// One field's value; `Absent` fields are left out of the line.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'a> {
    Absent,
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    /// A set of names, written as a sorted JSON list.
    Names(Vec<Cow<'a, str>>),
}

/// Every field of one line, indexed by [`at`].
pub type Fields<'a> = [Field<'a>; FIELDS];

/// How the auth layer concluded about a request that was not refused: `"authenticated"` with a
/// principal, `"exempt"` on a rule that needs no token, `"anonymous"` otherwise. A refusal's reason
/// is its error code.
pub fn reason(error_code: Option<&str>, authenticated: bool, exempt: bool) -> &str {
    match error_code {
        Some(code) => code,
        None if authenticated => "authenticated",
        None if exempt => "exempt",
        None => "anonymous",
    }
}

/// Append the JSON line of one record to `out` (no newline): `timestamp` (UTC, ISO 8601, whole
/// milliseconds), `level`, `logger`, `message` (the record's summary), then every present field.
pub fn write_line(timestamp: f64, level: &str, logger: &str, fields: &mut Fields<'_>, out: &mut String) {
    out.push_str("{\"timestamp\":\"");
    write_timestamp(timestamp, out);
    out.push_str("\",\"level\":");
    write_str(level, out);
    out.push_str(",\"logger\":");
    write_str(logger, out);
    out.push_str(",\"message\":");
    write_str(&summary(fields), out);
    for (key, field) in KEYS.iter().zip(fields.iter_mut()) {
        if matches!(field, Field::Absent) {
            continue;
        }
        out.push_str(key);
        write_field(field, out);
    }
    out.push('}');
}

/// A short human line for plain-text handlers: `"GET /api/v1/reports 403 insufficient_scope"`.
pub fn summary(fields: &Fields<'_>) -> String {
    let mut out = String::with_capacity(48);
    for (i, index) in [at::METHOD, at::PATH, at::STATUS].into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match &fields[index] {
            Field::Str(s) => out.push_str(s),
            Field::Int(n) => out.push_str(itoa::Buffer::new().format(*n)),
            Field::Absent if index == at::STATUS => out.push('-'),
            Field::Absent => out.push_str("None"),
            Field::Float(f) => write_float(*f, &mut out),
            Field::Names(_) => out.push('?'),
        }
    }
    if let Field::Str(error) = &fields[at::ERROR_TYPE] {
        out.push(' ');
        out.push_str(error);
    }
    out
}

fn write_field(field: &mut Field<'_>, out: &mut String) {
    match field {
        Field::Absent => out.push_str("null"),
        Field::Str(s) => write_str(s, out),
        Field::Int(n) => out.push_str(itoa::Buffer::new().format(*n)),
        Field::Float(f) => write_float(*f, out),
        Field::Names(names) => {
            if !names.is_sorted() {
                names.sort_unstable(); // a principal's are sorted already
            }
            out.push('[');
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(name, out);
            }
            out.push(']');
        }
    }
}

/// A float in its shortest round-trip form (`1.0`, `0.42`, `0.00001`, `1e20`), `null` when it is not finite
/// (JSON has no NaN or infinity).
fn write_float(f: f64, out: &mut String) {
    if f.is_finite() {
        out.push_str(ryu::Buffer::new().format_finite(f));
    } else {
        out.push_str("null");
    }
}

/// `2026-12-02T05:40:01.123Z` for epoch seconds: rounded to the microsecond (half to even), then
/// the milliseconds truncated — what Python's `datetime.fromtimestamp(t, UTC).isoformat(timespec=
/// "milliseconds")` writes, so that both audit sinks agree to the digit.
pub fn write_timestamp(epoch: f64, out: &mut String) {
    let epoch = if epoch.is_finite() { epoch } else { 0.0 };
    let whole = epoch.trunc();
    let mut secs = whole as i64;
    let mut micros = ((epoch - whole) * 1e6).round_ties_even() as i64;
    if micros >= 1_000_000 {
        secs += 1;
        micros -= 1_000_000;
    } else if micros < 0 {
        secs -= 1;
        micros += 1_000_000;
    }
    let millis = micros / 1000;
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        digits(y as u32, 4, out);
    } else {
        out.push_str(itoa::Buffer::new().format(y));
    }
    out.push('-');
    digits(m, 2, out);
    out.push('-');
    digits(d, 2, out);
    out.push('T');
    digits((of_day / 3600) as u32, 2, out);
    out.push(':');
    digits((of_day % 3600 / 60) as u32, 2, out);
    out.push(':');
    digits((of_day % 60) as u32, 2, out);
    out.push('.');
    digits(millis as u32, 3, out);
    out.push('Z');
}

/// `n` as exactly `width` decimal digits, zero-padded (`n` has at most that many).
fn digits(n: u32, width: u32, out: &mut String) {
    let mut scale = 10u32.pow(width - 1);
    while scale > 0 {
        out.push(char::from(b'0' + (n / scale % 10) as u8));
        scale /= 10;
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Fields<'static> {
        std::array::from_fn(|_| Field::Absent)
    }

    #[test]
    fn timestamps_match_the_calendar() {
        let mut out = String::new();
        write_timestamp(1_800_000_000.25, &mut out);
        assert_eq!(out, "2027-01-15T08:00:00.250Z");
        out.clear();
        write_timestamp(0.0, &mut out);
        assert_eq!(out, "1970-01-01T00:00:00.000Z");
        out.clear();
        write_timestamp(951_782_400.999_9, &mut out); // 2000-02-29, a leap day of a century year
        assert_eq!(out, "2000-02-29T00:00:00.999Z");
        out.clear();
        write_timestamp(-1.0, &mut out);
        assert_eq!(out, "1969-12-31T23:59:59.000Z");
    }

    #[test]
    fn a_line_leaves_absent_fields_out_and_sorts_names() {
        let mut fields = empty();
        fields[at::METHOD] = Field::Str("GET".into());
        fields[at::PATH] = Field::Str("/a\"b".into());
        fields[at::STATUS] = Field::Int(403);
        fields[at::SCOPES] = Field::Names(vec!["write".into(), "read".into()]);
        fields[at::ERROR_TYPE] = Field::Str("forbidden".into());
        fields[at::DURATION_MS] = Field::Float(2.0);
        let mut out = String::new();
        write_line(0.0, "INFO", "bastion.audit", &mut fields, &mut out);
        assert_eq!(
            out,
            concat!(
                r#"{"timestamp":"1970-01-01T00:00:00.000Z","level":"INFO","logger":"bastion.audit","#,
                r#""message":"GET /a\"b 403 forbidden","http.request.method":"GET","url.path":"/a\"b","#,
                r#""http.response.status_code":403,"bastion.auth.scopes":["read","write"],"#,
                r#""error.type":"forbidden","duration_ms":2.0}"#
            )
        );
    }

    #[test]
    fn the_keys_are_the_names_as_json() {
        for (key, name) in KEYS.iter().zip(FIELD_NAMES) {
            let mut want = String::from(",");
            write_str(name, &mut want);
            want.push(':');
            assert_eq!(*key, want);
        }
    }

    #[test]
    fn floats_are_shortest_and_never_nan() {
        for (f, want) in [
            (0.42, "0.42"),
            (1.0, "1.0"),
            (1e-5, "0.00001"),
            (1e20, "1e20"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
        ] {
            let mut out = String::new();
            write_float(f, &mut out);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn reasons() {
        assert_eq!(reason(Some("token_expired"), false, false), "token_expired");
        assert_eq!(reason(None, true, true), "authenticated");
        assert_eq!(reason(None, false, true), "exempt");
        assert_eq!(reason(None, false, false), "anonymous");
    }

    #[test]
    fn the_summary_marks_a_missing_status() {
        let mut fields = empty();
        fields[at::METHOD] = Field::Str("GET".into());
        fields[at::PATH] = Field::Str("/".into());
        assert_eq!(summary(&fields), "GET / -");
    }
}
