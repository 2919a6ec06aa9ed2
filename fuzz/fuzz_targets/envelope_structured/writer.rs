//! JSON rendering whose whitespace and string escapes are driven by the input's style tape.

use std::fmt::Write as _;

use super::input::{Json, Junk};

/// Renders JSON with whitespace and escapes driven by a tape.
pub(crate) struct Writer<'a> {
    pub(crate) out: String,
    pub(crate) tape: &'a [u8],
    pub(crate) pos: usize,
}

impl Writer<'_> {
    fn next(&mut self) -> u8 {
        let b = self.tape.get(self.pos % self.tape.len().max(1)).copied();
        self.pos += 1;
        b.unwrap_or(0)
    }

    pub(crate) fn ws(&mut self) {
        let ws = [" ", "\t", "\n", "\r\n"];
        let b = self.next();
        if b >= 0xf0 {
            self.out.push_str(ws[(b & 3) as usize]);
        }
    }

    pub(crate) fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            let b = self.next();
            let must = c == '"' || c == '\\' || (c as u32) < 0x20;
            if must || b >= 0xe0 {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    if b & 1 == 0 {
                        let _ = write!(self.out, "\\u{u:04x}");
                    } else {
                        let _ = write!(self.out, "\\u{u:04X}");
                    }
                }
            } else {
                self.out.push(c);
            }
        }
        self.out.push('"');
    }

    pub(crate) fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    pub(crate) fn junk(&mut self, j: &Junk) {
        match j {
            Junk::Int(n) => self.raw(&n.to_string()),
            Junk::Huge(n) => {
                let digits = 1 + usize::from(*n % 40);
                self.raw(&format!("9{}", "0".repeat(digits - 1)));
            }
            Junk::Float(f) if f.is_finite() => self.raw(&format!("{f:?}")),
            Junk::Float(_) => self.raw("1.5e300"),
            Junk::Bool(b) => self.raw(if *b { "true" } else { "false" }),
            Junk::Array(n) => {
                self.raw("[");
                for i in 0..(n % 4) {
                    if i > 0 {
                        self.raw(",");
                    }
                    self.raw(&i.to_string());
                }
                self.raw("]");
            }
            Junk::Object => self.raw("{}"),
            Junk::Text(s) => self.string(s),
        }
    }

    fn json(&mut self, j: &Json, depth: usize) {
        match j {
            Json::Null => self.raw("null"),
            Json::Bool(b) => self.raw(if *b { "true" } else { "false" }),
            Json::Int(n) => self.raw(&n.to_string()),
            Json::Float(f) if f.is_finite() => self.raw(&format!("{f:?}")),
            Json::Float(_) => self.raw("0.5"),
            Json::Text(s) => self.string(s),
            Json::Array(items) if depth < 64 => {
                self.raw("[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.raw(",");
                    }
                    self.ws();
                    self.json(item, depth + 1);
                }
                self.raw("]");
            }
            Json::Object(pairs) if depth < 64 => self.object(pairs, depth),
            _ => self.raw("{}"),
        }
    }

    pub(crate) fn object(&mut self, pairs: &[(String, Json)], depth: usize) {
        self.raw("{");
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                self.raw(",");
            }
            self.ws();
            self.string(k);
            self.ws();
            self.raw(":");
            self.ws();
            self.json(v, depth + 1);
        }
        self.ws();
        self.raw("}");
    }
}
