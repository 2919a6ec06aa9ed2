//! The fuzzer's input: a message described field by field, built by `arbitrary`.

use arbitrary::Arbitrary;

/// A field's value as written.
#[derive(Arbitrary, Debug)]
pub(crate) enum Slot<T> {
    Absent,
    Null,
    Good(T),
    Other(Junk),
}

/// Any JSON value, often of the wrong type.
#[derive(Arbitrary, Debug)]
pub(crate) enum Junk {
    Int(i64),
    /// An integer of this many digits (beyond i64 from 20 on).
    Huge(u8),
    Float(f64),
    Bool(bool),
    Array(u8),
    Object,
    Text(String),
}

#[derive(Arbitrary, Debug)]
pub(crate) enum Id {
    /// Printable ASCII, 1-200 characters.
    Printable(Vec<u8>),
    /// Exactly this many characters (the 200-character edge).
    Long(u8),
    Any(String),
}

#[derive(Arbitrary, Debug)]
pub(crate) enum Webhook {
    Catalogued(u8),
    InRange(u8, u8),
    Any(i64),
}

#[derive(Arbitrary, Debug)]
pub(crate) enum Event {
    /// The catalogue name of the message's webhook.
    Matching,
    Catalogued(u8),
    Visible(Vec<u8>),
    Any(String),
}

#[derive(Arbitrary, Debug)]
pub(crate) enum Url {
    Parts {
        scheme: u8,
        host: Host,
        port: Option<u16>,
        path: String,
    },
    Any(String),
}

#[derive(Arbitrary, Debug)]
pub(crate) enum Host {
    Name(Vec<u8>),
    V4([u8; 4]),
    V6([u16; 8]),
    Any(String),
}

#[derive(Arbitrary, Debug)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

#[derive(Arbitrary, Debug)]
pub(crate) struct Stamp {
    pub(crate) year: u16,
    pub(crate) month: u8,
    pub(crate) day: u8,
    pub(crate) hour: u8,
    pub(crate) minute: u8,
    pub(crate) second: u8,
    pub(crate) fraction: Option<(u32, u8)>,
    /// None: `Z`; else minutes east (any sign, any size).
    pub(crate) offset: Option<i16>,
    pub(crate) lower_case: bool,
}

#[derive(Arbitrary, Debug)]
pub(crate) enum HeaderName {
    Reserved(u8, u32),
    Token(Vec<u8>),
    Any(String),
}

#[derive(Arbitrary, Debug)]
pub(crate) enum HeaderValue {
    Printable(Vec<u8>),
    Any(String),
}

#[derive(Arbitrary, Debug)]
pub(crate) enum Secret {
    Whsec(Vec<u8>),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
pub(crate) struct Message {
    pub(crate) id: Slot<Id>,
    pub(crate) webhook: Slot<Webhook>,
    pub(crate) event: Slot<Event>,
    pub(crate) url: Slot<Url>,
    pub(crate) data: Slot<Vec<(String, Json)>>,
    pub(crate) site_id: Slot<i64>,
    pub(crate) created_at: Slot<Stamp>,
    pub(crate) headers: Slot<Vec<(HeaderName, HeaderValue)>>,
    pub(crate) secret: Slot<Secret>,
    pub(crate) unknown: Vec<(String, Junk)>,
    pub(crate) duplicate: Option<u8>,
    pub(crate) order: Vec<u8>,
    /// How strings are escaped and where whitespace goes.
    pub(crate) style: Vec<u8>,
    /// A size limit other than 1 MiB.
    pub(crate) max: Option<u16>,
}
