//! The webhook catalog of contract section 3.

/// Every catalogued webhook number and its event name.
pub const CATALOG: [(i64, &str); 12] = [
    (101, "Chat.Request.start"),
    (102, "Chat.beforeAssigning"),
    (103, "Chat.afterAssigning"),
    (104, "Chat.started"),
    (105, "Chat.Message.received"),
    (106, "Chat.Message.sent"),
    (107, "Chat.Agent.joinChat"),
    (108, "Chat.Visitor.banned"),
    (109, "Chat.ended"),
    (110, "Chat.wrapup"),
    (201, "OfflineMessage.submitted"),
    (301, "App.installed"),
];

/// The catalog's event name of a webhook number.
pub fn catalog(n: i64) -> Option<&'static str> {
    CATALOG.iter().find(|(k, _)| *k == n).map(|(_, e)| *e)
}

/// Valid webhook numbers: 101-199, 201-299, 301-399.
pub fn valid_number(n: i64) -> bool {
    matches!(n, 101..=199 | 201..=299 | 301..=399)
}
