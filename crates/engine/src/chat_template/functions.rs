//! The filters and functions chat templates call beyond Jinja's builtins, as Hugging Face's
//! `apply_chat_template` and llama.cpp define them: `tojson`, `raise_exception`, `strftime_now`.

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::value::{Kwargs, Value};
use minijinja::{Error, ErrorKind};
use serde::Serialize;
use serde_json::ser::Formatter;

/// The message of a template's `raise_exception(...)`, kept as the error's source so that
/// rendering can tell a template's own complaint from a failure of the engine.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct RaisedByTemplate(pub(crate) String);

/// `raise_exception(message)`: aborts rendering with the template's message.
pub(crate) fn raise_exception(message: Value) -> Result<Value, Error> {
    let message = message.as_str().map_or_else(|| message.to_string(), str::to_string);
    Err(Error::new(ErrorKind::InvalidOperation, message.clone()).with_source(RaisedByTemplate(message)))
}

/// `value | tojson(ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
///
/// minijinja's own `tojson` escapes `<`, `>`, `&` and `'` for HTML and prints no spaces; chat
/// templates were written against Python's `json.dumps`, which separates items with `", "` and
/// keys with `": "` and keeps non-ASCII text as it is (HF and llama.cpp pass
/// `ensure_ascii=False`). Tool schemas and call arguments end up in the prompt this way, so the
/// spelling must match what the model was trained on.
pub(crate) fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let ensure_ascii = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false);
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let indent = match kwargs.get::<Option<Value>>("indent")? {
        None => None,
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_string(),
            None => {
                let n = i64::try_from(v.clone()).map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("tojson: indent must be a number or a string, not {v}"),
                    )
                })?;
                " ".repeat(usize::try_from(n).unwrap_or(0))
            }
        }),
    };
    let (item_sep, key_sep) = match kwargs.get::<Option<Value>>("separators")? {
        Some(seps) if !seps.is_none() && !seps.is_undefined() => {
            let seps: Vec<String> = seps
                .try_iter()?
                .map(|s| s.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .filter(|s: &Vec<String>| s.len() == 2)
                .ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, "tojson: separators must be two strings, (item, key)")
                })?;
            (seps[0].clone(), seps[1].clone())
        }
        _ => ((if indent.is_some() { "," } else { ", " }).to_string(), ": ".to_string()),
    };
    kwargs.assert_all_used()?;

    let style = JsonStyle { item_sep: &item_sep, key_sep: &key_sep, indent: indent.as_deref() };
    let json = if sort_keys {
        let mut tree = serde_json::to_value(value).map_err(json_error)?;
        sort_object_keys(&mut tree);
        style.to_string(&tree)?
    } else {
        style.to_string(value)?
    };
    Ok(Value::from_safe_string(if ensure_ascii { escape_non_ascii(&json) } else { json }))
}

fn json_error(e: serde_json::Error) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}"))
}

fn sort_object_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = std::mem::take(map).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, mut item) in entries {
                sort_object_keys(&mut item);
                map.insert(key, item);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(sort_object_keys),
        _ => {}
    }
}

/// Python's `ensure_ascii=True`: every non-ASCII character as `\uXXXX` (UTF-16, lowercase hex).
fn escape_non_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// How `json.dumps` lays out JSON: separators and optional indentation.
struct JsonStyle<'a> {
    item_sep: &'a str,
    key_sep: &'a str,
    indent: Option<&'a str>,
}

impl JsonStyle<'_> {
    fn to_string(&self, value: &impl Serialize) -> Result<String, Error> {
        let mut out = Vec::new();
        let formatter = PythonFormatter { style: self, depth: 0, has_value: false };
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        value.serialize(&mut serializer).map_err(json_error)?;
        // serde_json writes only valid UTF-8.
        String::from_utf8(out).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))
    }
}

/// A serde_json formatter that writes what Python's `json.dumps` writes with the same settings.
struct PythonFormatter<'a> {
    style: &'a JsonStyle<'a>,
    depth: usize,
    has_value: bool,
}

impl PythonFormatter<'_> {
    fn newline<W: ?Sized + io::Write>(&self, writer: &mut W) -> io::Result<()> {
        if let Some(indent) = self.style.indent {
            writer.write_all(b"\n")?;
            for _ in 0..self.depth {
                writer.write_all(indent.as_bytes())?;
            }
        }
        Ok(())
    }

    fn open<W: ?Sized + io::Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        writer.write_all(bracket)
    }

    fn close<W: ?Sized + io::Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(writer)?;
        }
        writer.write_all(bracket)
    }

    fn item<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if !first {
            writer.write_all(self.style.item_sep.as_bytes())?;
        }
        self.newline(writer)
    }
}

impl Formatter for PythonFormatter<'_> {
    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"[")
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"]")
    }

    fn begin_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        self.item(writer, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"{")
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"}")
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        self.item(writer, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(self.style.key_sep.as_bytes())
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// `strftime_now(format)`: the current time, formatted like C's `strftime`, in UTC.
pub(crate) fn strftime_now(format: &str) -> Result<String, Error> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format_time(format, now).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("strftime_now: {e}")))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// Formats `unix_secs` (UTC) with the `strftime` conversions templates use (`%Y`, `%m`, `%d`, `%H`,
/// `%M`, `%S`, `%B`, `%A`, ...); an unsupported conversion is an error naming it.
pub fn format_time(format: &str, unix_secs: u64) -> Result<String, String> {
    let days = unix_secs / 86_400;
    let secs_of_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let weekday = ((days + 4) % 7) as usize; // 1970-01-01 was a Thursday.
    let day_of_year = days - days_before_year(year) + 1;
    let (hour, minute, second) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
    let month_name = MONTHS[(month - 1) as usize];
    let weekday_name = WEEKDAYS[weekday];

    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next().ok_or("format ends with a lone %")?;
        let piece = match spec {
            'Y' => year.to_string(),
            'y' => format!("{:02}", year % 100),
            'm' => format!("{month:02}"),
            'B' => month_name.to_string(),
            'b' | 'h' => month_name[..3].to_string(),
            'd' => format!("{day:02}"),
            'e' => format!("{day:2}"),
            'j' => format!("{day_of_year:03}"),
            'A' => weekday_name.to_string(),
            'a' => weekday_name[..3].to_string(),
            'H' => format!("{hour:02}"),
            'I' => format!("{:02}", (hour + 11) % 12 + 1),
            'p' => (if hour < 12 { "AM" } else { "PM" }).to_string(),
            'M' => format!("{minute:02}"),
            'S' => format!("{second:02}"),
            'F' => format!("{year}-{month:02}-{day:02}"),
            'T' => format!("{hour:02}:{minute:02}:{second:02}"),
            'Z' => "UTC".to_string(),
            '%' => "%".to_string(),
            other => return Err(format!("unsupported conversion %{other}")),
        };
        out.push_str(&piece);
    }
    Ok(out)
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01 (Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to January 1st of `year` (1970 or later).
fn days_before_year(year: u64) -> u64 {
    let leap_days = |y: u64| y / 4 - y / 100 + y / 400;
    (year - 1970) * 365 + leap_days(year - 1) - leap_days(1969)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn render(source: &str, ctx: Value) -> Result<String, Error> {
        let mut env = minijinja::Environment::new();
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", raise_exception);
        env.render_str(source, ctx)
    }

    #[test]
    fn tojson_spells_json_like_python() {
        let ctx = Value::from_serialize(serde_json::json!({
            "v": {"b": [1, 2.5, true, null], "a": "x<y & 'q' \"z\"\n\t\u{1}", "ü": "日本 🦀", "e": [], "o": {}}
        }));
        assert_eq!(
            render("{{ v | tojson }}", ctx.clone()).unwrap(),
            r#"{"b": [1, 2.5, true, null], "a": "x<y & 'q' \"z\"\n\t\u0001", "ü": "日本 🦀", "e": [], "o": {}}"#
        );
        assert_eq!(
            render("{{ v | tojson(ensure_ascii=true) }}", ctx.clone()).unwrap(),
            r#"{"b": [1, 2.5, true, null], "a": "x<y & 'q' \"z\"\n\t\u0001", "\u00fc": "\u65e5\u672c \ud83e\udd80", "e": [], "o": {}}"#
        );
        assert_eq!(
            render("{{ v.b | tojson(indent=2) }}|{{ v.o | tojson(indent=2) }}", ctx.clone()).unwrap(),
            "[\n  1,\n  2.5,\n  true,\n  null\n]|{}"
        );
        assert_eq!(
            render("{{ {'z': {'y': 1, 'x': [2]}} | tojson(indent=1, sort_keys=true) }}", ctx.clone()).unwrap(),
            "{\n \"z\": {\n  \"x\": [\n   2\n  ],\n  \"y\": 1\n }\n}"
        );
        assert_eq!(render("{{ v.b | tojson(separators=(',', ':')) }}", ctx).unwrap(), "[1,2.5,true,null]");
    }

    #[test]
    fn tojson_rejects_bad_arguments() {
        let err = render("{{ 1 | tojson(separators=[',']) }}", Value::UNDEFINED).unwrap_err();
        assert!(err.to_string().contains("two strings"), "{err}");
        let err = render("{{ 1 | tojson(colour='red') }}", Value::UNDEFINED).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn raise_exception_carries_the_message() {
        let err = render("{{ raise_exception('roles must alternate') }}", Value::UNDEFINED).unwrap_err();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        let mut found = None;
        while let Some(e) = source {
            if let Some(raised) = e.downcast_ref::<RaisedByTemplate>() {
                found = Some(raised.0.clone());
            }
            source = e.source();
        }
        assert_eq!(found.as_deref(), Some("roles must alternate"));
    }

    #[test]
    fn format_time_matches_strftime() {
        // 2024-02-29 13:05:09 UTC, a Thursday, day 60 of a leap year.
        let t = 1_709_211_909;
        assert_eq!(format_time("%d %b %Y", t).unwrap(), "29 Feb 2024");
        assert_eq!(
            format_time("%A %B %e %j %y %F %T %I%p %%", t).unwrap(),
            "Thursday February 29 060 24 2024-02-29 13:05:09 01PM %"
        );
        assert_eq!(format_time("%a %H:%M:%S", 0).unwrap(), "Thu 00:00:00");
        assert_eq!(format_time("%Y-%m-%d %j", 1_735_689_599).unwrap(), "2024-12-31 366");
        assert!(format_time("%Q", t).unwrap_err().contains("%Q"));
        assert!(format_time("50%", t).is_err());
        assert!(strftime_now("%Y").unwrap().len() == 4);
    }
}
