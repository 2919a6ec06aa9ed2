//! Reading `P.dead` must never drop a parked message (contract section 6),
//! on every supported RabbitMQ version.
//!
//! The `dead` commands read `P.dead` by taking messages unacked and
//! returning them (see [`super::dead_letters`]). From RabbitMQ 4.0 every
//! quorum queue has a delivery limit, 20 by default, and a quorum queue
//! without a dead-letter target (as `P.dead` is) *drops* a message whose
//! returns pass it: on 4.0 every return counts, so the 21st `dead list`
//! emptied `P.dead`; on 4.3 a `basic.nack` no longer counts, but a
//! `basic.reject` or a closed channel (a command killed midway) still do.
//!
//! So a quorum `P.dead` is declared with `x-delivery-limit` =
//! [`DEAD_DELIVERY_LIMIT`] (`i32::MAX`): as good as unlimited on every
//! version (measured: 25 returns keep the message on 3.10, 4.0 and 4.3),
//! and accepted by each. (`-1`, which 4.x reads as "no limit", makes 3.10
//! drop a message on its first return.) A classic queue has no delivery
//! limit and gets no such argument.
//!
//! A `P.dead` that an earlier release declared has no `x-delivery-limit`,
//! and a queue's arguments cannot be changed by declaring it again. Such a
//! queue is still used ([`DeadReads::Exposed`]): `run` and `declare` log a
//! warning naming the policy that protects it, and `check` reports it.
//! AMQP cannot see policies, so `check` asks the management API when
//! `RABBITMQ_MANAGEMENT_URL` is set ([`assess`]): an old `P.dead` under
//! such a policy is then reported protected, and a new one that a policy
//! with a lower `delivery-limit` overrides is reported exposed.

use lapin::{Channel, options::QueueDeclareOptions};

use super::{
    management::QueuePolicies,
    topology::{QueueSpec, TopologyError, conflict_or_broker},
};

/// `x-delivery-limit` of a quorum `P.dead`: reads never reach it.
pub const DEAD_DELIVERY_LIMIT: i64 = i32::MAX as i64;

/// The argument that protects `P.dead`'s reads.
pub const DELIVERY_LIMIT_ARG: &str = "x-delivery-limit";

/// Whether reading `P.dead` is safe on every broker version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReads {
    /// Declared with an unlimited `x-delivery-limit` (or a classic queue).
    Safe,
    /// Declared by an earlier release, without `x-delivery-limit`: on
    /// RabbitMQ 4.0 and later each read may count toward the broker's
    /// default delivery limit (20), which drops the message, unless a
    /// policy sets `delivery-limit` for it.
    Exposed,
}

/// What an operator does about an exposed `P.dead` (one line).
pub fn exposed_advice(dead: &str) -> String {
    let pattern = format!("^{}$", dead.replace('.', "\\."));
    format!(
        "{dead} was declared by an earlier release without x-delivery-limit: on RabbitMQ 4.0 and \
         later each read by the dead commands may count toward the default delivery limit of 20, \
         which drops the message; protect it with a policy: rabbitmqctl set_policy --apply-to \
         queues {dead}-reads '{pattern}' '{{\"delivery-limit\":{DEAD_DELIVERY_LIMIT}}}'"
    )
}

/// Whether reads of `P.dead` are safe given the delivery limit in effect
/// on it (its argument and its policies, as the management API shows
/// them) on a broker of `major` version: `Err` says why not, and what to
/// do. A quorum queue's limit is the lower of argument and policy; from
/// 4.0 a negative one means none, and none at all means 20. (On 3.x no
/// limit means none, but the queue is reported all the same: an upgrade
/// to 4.0 exposes it.)
pub fn assess(dead: &str, q: &QueuePolicies, major: u32) -> Result<(), String> {
    if q.queue_type != "quorum" {
        return Ok(());
    }
    let source = |from_policy: bool| match from_policy {
        true => format!("policy {}", q.policy_names.join(", ")),
        false => "its x-delivery-limit argument".to_string(),
    };
    let (limit, from_policy) = match (q.argument, q.policy) {
        (Some(a), Some(p)) if p >= 0 && (a < 0 || p < a) => (p, true),
        (Some(a), _) => (a, false),
        (None, Some(p)) => (p, true),
        (None, None) => return Err(exposed_advice(dead)),
    };
    if limit >= DEAD_DELIVERY_LIMIT || (limit < 0 && major >= 4) {
        return Ok(());
    }
    Err(format!(
        "{dead} has delivery-limit {limit} (from {}): each read by the dead commands may count \
         toward it, which drops the message; {}",
        source(from_policy),
        exposed_advice(dead)
            .split_once("protect it with ")
            .map_or("", |(_, fix)| fix)
    ))
}

/// `P.dead` as an earlier release declared it: `spec` without
/// `x-delivery-limit`; `None` when `spec` has none (classic).
pub fn legacy(spec: &QueueSpec) -> Option<QueueSpec> {
    let mut legacy = spec.clone();
    let mut args = legacy.arguments.inner().clone();
    args.remove(DELIVERY_LIMIT_ARG)?;
    legacy.arguments = args.into();
    Some(legacy)
}

/// Declares `P.dead` as `spec` on `channel`. When it exists as an earlier
/// release declared it, the refusal closes `channel`, and the legacy form
/// is declared on `spare` instead: it is used as it is, [`DeadReads::Exposed`],
/// with a warning.
pub async fn declare_dead(
    channel: &Channel,
    spare: impl AsyncFnOnce() -> Result<Channel, lapin::Error>,
    spec: &QueueSpec,
) -> Result<DeadReads, TopologyError> {
    let err = match declare(channel, spec).await {
        Ok(()) => return Ok(DeadReads::Safe),
        Err(e) => e,
    };
    let (TopologyError::Conflict { argument, .. }, Some(legacy)) = (&err, legacy(spec)) else {
        return Err(err);
    };
    if argument != DELIVERY_LIMIT_ARG {
        return Err(err);
    }
    let spare = spare().await?;
    let declared = declare(&spare, &legacy).await;
    if spare.status().connected() {
        let _ = spare.close(200, "declared".into()).await;
    }
    // Not the legacy form either: that refusal names what else differs.
    declared?;
    tracing::warn!(
        "{} (`webhook-worker check` with RABBITMQ_MANAGEMENT_URL shows whether a policy does)",
        exposed_advice(&spec.name)
    );
    Ok(DeadReads::Exposed)
}

async fn declare(channel: &Channel, spec: &QueueSpec) -> Result<(), TopologyError> {
    channel
        .queue_declare(
            spec.name.as_str().into(),
            QueueDeclareOptions::durable(),
            spec.arguments.clone(),
        )
        .await
        .map(|_| ())
        .map_err(|e| conflict_or_broker("queue", &spec.name, e))
}

#[cfg(test)]
mod tests {
    use lapin::types::{AMQPValue, FieldTable};

    use super::*;

    #[test]
    fn the_legacy_form_lacks_only_the_delivery_limit() {
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(1000));
        let plain = QueueSpec {
            name: "p.dead".into(),
            arguments: args.clone(),
        };
        assert_eq!(legacy(&plain), None);
        args.insert(
            DELIVERY_LIMIT_ARG.into(),
            AMQPValue::LongLongInt(DEAD_DELIVERY_LIMIT),
        );
        let protected = QueueSpec {
            name: "p.dead".into(),
            arguments: args,
        };
        assert_eq!(legacy(&protected), Some(plain));
    }

    #[test]
    fn a_policy_protects_an_old_dead_queue_and_a_lower_one_exposes_a_new_one() {
        let q = |argument, policy| QueuePolicies {
            queue_type: "quorum".into(),
            argument,
            policy,
            policy_names: vec!["p".into()],
        };
        let max = Some(DEAD_DELIVERY_LIMIT);
        assert!(assess("d", &q(None, None), 4).is_err(), "old, no policy");
        assert!(assess("d", &q(None, None), 3).is_err(), "old on 3.x too");
        assert_eq!(assess("d", &q(None, max), 4), Ok(()), "old, protected");
        assert_eq!(
            assess("d", &q(None, Some(-1)), 4),
            Ok(()),
            "4.x: -1 is none"
        );
        assert!(assess("d", &q(None, Some(-1)), 3).is_err(), "3.x: -1 drops");
        assert_eq!(assess("d", &q(max, None), 4), Ok(()), "new");
        let lowered = assess("d", &q(max, Some(20)), 4).unwrap_err();
        assert!(
            lowered.contains("delivery-limit 20 (from policy p)"),
            "{lowered}"
        );
        assert!(lowered.contains("rabbitmqctl set_policy"), "{lowered}");
        let classic = QueuePolicies::default();
        assert_eq!(assess("d", &classic, 4), Ok(()));
    }

    #[test]
    fn the_advice_names_the_queue_and_an_anchored_pattern() {
        let a = exposed_advice("webhooks.dead");
        assert!(a.contains("'^webhooks\\.dead$'"), "{a}");
        assert!(a.contains("\"delivery-limit\":2147483647"), "{a}");
    }
}
