//! `webhook-worker check`: what `run` would use, and whether the broker
//! agrees. It takes the same settings as `run`, prints them with secrets
//! redacted (the broker password never, the signing secret as `<set>` or
//! `<unset>`), compares the broker's exchange and queues with the
//! configured ones without changing anything (see [`crate::broker::check`]),
//! and exits 0 when they agree, 1 otherwise.

use clap::Args;
use serde_json::{Value, json};

use super::connect_once;
use crate::{
    ConfigError, Error,
    app::proxy_config,
    broker::topology::Topology,
    broker::{
        check::{Checked, Finding, check},
        dead_reads::{DELIVERY_LIMIT_ARG, assess},
        management::{Leaders, Management, ManagementError},
        tls::{RECEIVER_IDENTITY, load_identity},
        topology::LogRetention,
        url::parse_urls,
    },
    config::Config,
    domain::{duration::format_setting, signing::SigningKey},
    http::proxy::ProxyConfig,
};

/// Compare the broker's topology with the configuration; print the
/// effective configuration, secrets redacted.
#[derive(Debug, Args)]
pub(super) struct Check {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The RabbitMQ management API (e.g. http://127.0.0.1:15672), so that
    /// check sees the policies in effect on P.dead and the work queues'
    /// leaders (AMQP cannot); its credentials are the URL's, else AMQP_URL's.
    #[arg(long, env = "RABBITMQ_MANAGEMENT_URL", hide_env_values = true)]
    management_url: Option<String>,
    #[command(flatten)]
    config: Config,
}

impl Check {
    pub(super) async fn execute(self) -> Result<(), Error> {
        // The same validation `run` does before it connects.
        let urls = parse_urls(&self.config.broker.amqp_url)?;
        if let Some(secret) = &self.config.delivery.signing_secret {
            SigningKey::from_secret(secret).map_err(|source| ConfigError::Secret {
                setting: "WEBHOOK_SIGNING_SECRET",
                source,
            })?;
        }
        let d = &self.config.delivery;
        load_identity(
            RECEIVER_IDENTITY,
            d.client_cert.as_deref(),
            d.client_key.as_deref(),
        )
        .map_err(ConfigError::from)?;
        let proxy = proxy_config(d)?;
        let mut settings = effective(&self.config, &urls.redacted());
        settings.extend(proxy_settings(proxy.as_ref()));
        let config: serde_json::Map<_, _> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
            .collect();
        let topology = self.config.topology();
        // The configuration first: it is what the reader compares, and it
        // shows even when the broker cannot be reached.
        if !self.json {
            println!("configuration");
            for (k, v) in &settings {
                println!("  {k:<30} {v}");
            }
        }
        let (found, leaders) = match self.compare(&topology).await {
            Ok(found) => found,
            Err(e) => {
                if self.json {
                    println!(
                        "{}",
                        json!({"ok": false, "config": config, "error": e.to_string()})
                    );
                }
                return Err(e);
            }
        };
        let problems = found
            .iter()
            .filter(|c| c.finding != Finding::Matches)
            .count();
        if self.json {
            let topology: Vec<Value> = found.iter().map(checked_json).collect();
            let leaders = leaders.as_ref().map(leaders_json);
            println!(
                "{}",
                json!({"ok": problems == 0, "config": config, "topology": topology, "leaders": leaders})
            );
        } else {
            println!(
                "topology of prefix '{}' ({} queues)",
                topology.prefix(),
                topology.queue_type().as_str()
            );
            for c in &found {
                println!("  {}", checked_line(c));
            }
            if let Some(l) = &leaders {
                print_leaders(l);
            }
        }
        if problems == 0 {
            eprintln!("the broker's topology matches the configuration");
            Ok(())
        } else {
            Err(Error::TopologyMismatch(problems))
        }
    }
}

impl Check {
    /// Connects and compares, changing nothing.
    async fn compare(&self, topology: &Topology) -> Result<(Vec<Checked>, Option<Leaders>), Error> {
        let management = match &self.management_url {
            Some(url) => {
                let urls = parse_urls(&self.config.broker.amqp_url)?;
                let m = Management::new(url, urls.node(0).uri());
                Some(m.map_err(|e| Error::Usage(e.to_string()))?)
            }
            None => None,
        };
        let conn = connect_once(&self.config.broker, "check").await?;
        let found = check(&conn, topology).await;
        let _ = conn.close(200, "checked".into()).await;
        let mut found = found?;
        if let Some(dead) = found
            .iter_mut()
            .find(|c| c.kind == "queue" && c.name == topology.dead())
        {
            assess_dead(management.as_ref(), dead).await;
        }
        let leaders = match management {
            Some(m) => leaders(&m, topology, &found).await,
            None => None,
        };
        Ok((found, leaders))
    }
}

/// Where the work queues' leaders are, once they all exist as configured.
async fn leaders(m: &Management, topology: &Topology, found: &[Checked]) -> Option<Leaders> {
    let queues = topology.work_queues();
    let all_there = queues.iter().all(|q| {
        found
            .iter()
            .any(|c| c.kind == "queue" && &c.name == q && c.finding == Finding::Matches)
    });
    if !all_there {
        return None;
    }
    match m.leaders(&queues).await {
        Ok(leaders) => Some(leaders),
        Err(e) => {
            eprintln!("warning: the work queues' leaders not read: {e}");
            None
        }
    }
}

/// The leaders as text, and a warning when they share nodes they need not.
fn print_leaders(l: &Leaders) {
    println!(
        "leaders of the work queues (on {} of {} running nodes)",
        l.nodes(),
        l.running_nodes
    );
    for (queue, node) in &l.of {
        println!("  {queue:<30} {}", node.as_deref().unwrap_or("<none>"));
    }
    if !l.spread() {
        eprintln!(
            "warning: the {} work queues' leaders are on {} of {} running nodes: one node serves more \
             of them than it needs to; spread them with `rabbitmq-queues rebalance quorum` \
             (docs/deployment.md, Leaders across a cluster's nodes)",
            l.of.len(),
            l.nodes(),
            l.running_nodes
        );
    }
}

fn leaders_json(l: &Leaders) -> Value {
    let queues: serde_json::Map<_, _> = l.of.iter().map(|(q, n)| (q.clone(), json!(n))).collect();
    json!({"queues": queues, "nodes": l.nodes(), "running_nodes": l.running_nodes, "spread": l.spread()})
}

/// `P.dead`'s protection as the policies in effect show it, when the
/// management API is known; else an exposed one says how to let check see
/// a policy already set.
async fn assess_dead(management: Option<&Management>, dead: &mut Checked) {
    if !matches!(dead.finding, Finding::Matches | Finding::Exposed { .. }) {
        return;
    }
    let Some(m) = management else {
        if let Finding::Exposed { advice } = &mut dead.finding {
            advice.push_str(" (set RABBITMQ_MANAGEMENT_URL to let check see a policy already set)");
        }
        return;
    };
    let seen = async {
        Ok((
            m.queue_policies(&dead.name).await?,
            m.major_version().await?,
        ))
    };
    let seen: Result<_, ManagementError> = seen.await;
    match seen {
        Ok((policies, major)) => {
            dead.finding = match assess(&dead.name, &policies, major) {
                Ok(()) => Finding::Matches,
                Err(advice) => Finding::Exposed { advice },
            }
        }
        Err(e) => eprintln!("warning: {} not assessed: {e}", dead.name),
    }
}

/// A file setting as shown: its path (never its contents), or `<unset>`.
fn path(p: &Option<std::path::PathBuf>) -> String {
    p.as_ref()
        .map_or_else(|| "<unset>".into(), |p| p.display().to_string())
}

/// Every setting `run` would use, by its variable name, redacted.
fn effective(c: &Config, broker: &str) -> Vec<(&'static str, String)> {
    let d = format_setting;
    vec![
        ("AMQP_URL", broker.to_string()),
        ("AMQP_CA_FILE", path(&c.broker.amqp_ca_file)),
        ("AMQP_CLIENT_CERT", path(&c.broker.amqp_client_cert)),
        ("AMQP_CLIENT_KEY", path(&c.broker.amqp_client_key)),
        ("WEBHOOK_PREFIX", c.names.prefix.clone()),
        (
            "WEBHOOK_QUEUE_TYPE",
            c.topology.queue_type.as_str().to_string(),
        ),
        (
            "WEBHOOK_RETRY_SCHEDULE",
            c.topology.retry_schedule.to_string(),
        ),
        ("WEBHOOK_MAX_AGE", d(c.retry.max_age)),
        ("WEBHOOK_DEAD_TTL", d(c.topology.dead_ttl)),
        (
            "WEBHOOK_DELIVERY_LIMIT",
            c.topology.delivery_limit.to_string(),
        ),
        ("WEBHOOK_SHARDS", c.topology.shards.to_string()),
        ("WEBHOOK_TIMEOUT", d(c.delivery.timeout)),
        ("WEBHOOK_CA_FILE", path(&c.delivery.ca_file)),
        ("WEBHOOK_CLIENT_CERT", path(&c.delivery.client_cert)),
        ("WEBHOOK_CLIENT_KEY", path(&c.delivery.client_key)),
        ("WEBHOOK_CONCURRENCY", c.delivery.concurrency.to_string()),
        (
            "WEBHOOK_HOST_CONCURRENCY",
            c.delivery.host_concurrency.to_string(),
        ),
        (
            "WEBHOOK_ALLOW_PRIVATE_TARGETS",
            c.delivery.allow_private_targets.to_string(),
        ),
        (
            "WEBHOOK_SIGNING_SECRET",
            match c.delivery.signing_secret {
                Some(_) => "<set>".into(),
                None => "<unset>".into(),
            },
        ),
        (
            "WEBHOOK_MAX_MESSAGE_BYTES",
            c.delivery.max_message_bytes.to_string(),
        ),
        ("WEBHOOK_SHUTDOWN_GRACE", d(c.delivery.shutdown_grace)),
        ("WEBHOOK_OUTCOMES", c.outcomes.outcomes.as_str().to_string()),
        (
            "WEBHOOK_LOG_RETENTION",
            match c.topology.log_retention {
                LogRetention::Off => "0".into(),
                LogRetention::Keep(age) => d(age),
            },
        ),
        (
            "WEBHOOK_LOG_MAX_BYTES",
            c.topology.log_max_bytes.to_string(),
        ),
        ("METRICS_ADDR", c.telemetry.metrics_addr.to_string()),
    ]
}

/// The proxy settings as shown: the URL with its password redacted.
fn proxy_settings(proxy: Option<&ProxyConfig>) -> [(&'static str, String); 2] {
    match proxy {
        Some(p) => [
            ("WEBHOOK_PROXY_URL", p.url.to_string()),
            ("WEBHOOK_NO_PROXY", p.no_proxy.clone()),
        ],
        None => [
            ("WEBHOOK_PROXY_URL", "<unset>".into()),
            ("WEBHOOK_NO_PROXY", "<unset>".into()),
        ],
    }
}

fn checked_line(c: &Checked) -> String {
    match &c.finding {
        Finding::Matches => format!("ok       {} {}", c.kind, c.name),
        Finding::Missing => format!("missing  {} {}", c.kind, c.name),
        Finding::Differs { argument, detail } => {
            format!("differs  {} {}: {argument} ({detail})", c.kind, c.name)
        }
        Finding::Exposed { advice } => format!("exposed  {} {}: {advice}", c.kind, c.name),
    }
}

fn checked_json(c: &Checked) -> Value {
    let (status, argument, detail) = match &c.finding {
        Finding::Matches => ("ok", None, None),
        Finding::Missing => ("missing", None, None),
        Finding::Differs { argument, detail } => {
            ("differs", Some(argument.clone()), Some(detail.clone()))
        }
        Finding::Exposed { advice } => (
            "exposed",
            Some(DELIVERY_LIMIT_ARG.to_string()),
            Some(advice.clone()),
        ),
    };
    json!({"kind": c.kind, "name": c.name, "status": status, "argument": argument, "detail": detail})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_configuration_hides_the_secret() {
        let mut c = Config::defaults();
        c.delivery.signing_secret = Some("whsec_c2VjcmV0".into());
        let shown = effective(&c, "amqp://guest@127.0.0.1:5672//");
        let text = format!("{shown:?}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(shown.contains(&("WEBHOOK_SIGNING_SECRET", "<set>".into())));
        assert!(shown.contains(&("WEBHOOK_RETRY_SCHEDULE", "60s*3,1h*3,24h*3".into())));
        assert!(
            shown.contains(&("WEBHOOK_MAX_AGE", "48h".into())),
            "{shown:?}"
        );
        assert!(
            shown.contains(&("WEBHOOK_DEAD_TTL", "7d".into())),
            "{shown:?}"
        );
        c.delivery.signing_secret = None;
        assert!(effective(&c, "").contains(&("WEBHOOK_SIGNING_SECRET", "<unset>".into())));
    }
}
