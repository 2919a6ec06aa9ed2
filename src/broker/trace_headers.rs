//! The W3C trace context a producer put in a message's AMQP headers
//! (`traceparent`, `tracestate`), read as text and checked by
//! [`TraceContext::from_headers`].

use lapin::types::{AMQPValue, FieldTable};

use crate::domain::trace::TraceContext;

/// The message's trace context, when it carries a valid `traceparent`.
pub fn trace_context(headers: Option<&FieldTable>) -> Option<TraceContext> {
    let headers = headers?.inner();
    let text = |name: &str| match headers.get(name)? {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    };
    TraceContext::from_headers(text("traceparent"), text("tracestate"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_headers_only() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut h = FieldTable::default();
        h.insert("traceparent".into(), AMQPValue::LongString(good.into()));
        h.insert("tracestate".into(), AMQPValue::LongString("a=b".into()));
        let t = trace_context(Some(&h)).unwrap();
        assert_eq!(t.traceparent, good);
        assert_eq!(t.tracestate.as_deref(), Some("a=b"));
        h.insert("traceparent".into(), AMQPValue::LongLongInt(5));
        assert_eq!(trace_context(Some(&h)), None);
        assert_eq!(trace_context(None), None);
    }
}
