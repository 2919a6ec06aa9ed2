//! The deployment artifacts, checked without a Docker engine: the compose
//! stack's services, ports and healthchecks, and every PromQL expression of
//! the dashboard and the alert rules against the metric names a live worker
//! exports on `/metrics`.

use std::collections::BTreeSet;

use yaml_rust2::{Yaml, YamlLoader};

use crate::harness::*;

fn yaml(path: &str) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Yaml::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

#[test]
fn compose_stack_has_its_services_ports_and_healthchecks() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    for name in [
        "rabbitmq",
        "worker",
        "demo-receiver",
        "publisher",
        "prometheus",
        "grafana",
    ] {
        assert!(!services[name].is_badvalue(), "service {name} missing");
    }

    let rabbit = &services["rabbitmq"];
    assert!(
        rabbit["image"].as_str().unwrap().contains("management"),
        "broker with the management plugin"
    );
    assert!(
        strings(&rabbit["healthcheck"]["test"])
            .join(" ")
            .contains("rabbitmq-diagnostics")
    );
    assert!(
        strings(&rabbit["ports"])
            .iter()
            .any(|p| p.ends_with(":5672"))
    );

    let worker = &services["worker"];
    assert_eq!(
        worker["build"].as_str(),
        Some("."),
        "worker built from the Dockerfile"
    );
    assert_eq!(
        worker["depends_on"]["rabbitmq"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert!(
        strings(&worker["healthcheck"]["test"])
            .join(" ")
            .contains("/healthz")
    );
    assert!(
        strings(&worker["ports"])
            .iter()
            .any(|p| p.ends_with(":9102"))
    );
    let env = &worker["environment"];
    assert!(env["AMQP_URL"].as_str().unwrap().contains("@rabbitmq:5672"));
    assert_eq!(env["METRICS_ADDR"].as_str(), Some("0.0.0.0:9102"));

    // The helpers the stack runs exist as subcommands of the binary.
    for (service, sub) in [("demo-receiver", "demo-receiver"), ("publisher", "publish")] {
        let cmd = strings(&services[service]["command"]);
        assert_eq!(
            cmd.first().map(String::as_str),
            Some(sub),
            "{service} runs `{sub}`"
        );
        let out = bin()
            .args(cmd.iter().map(String::as_str).chain(["--help"]))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{service}: `{}` is not accepted: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let prometheus = &services["prometheus"];
    assert!(
        strings(&prometheus["volumes"])
            .iter()
            .any(|v| v.starts_with("./deploy/prometheus"))
    );
    let grafana = &services["grafana"];
    assert!(
        strings(&grafana["volumes"])
            .iter()
            .any(|v| v.starts_with("./deploy/grafana"))
    );
}

/// Metric names an expression uses: identifiers outside `{...}` and `[...]`
/// that are not function calls, `by (...)` label lists or `$variables`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    let mut in_braces = 0;
    let mut in_string: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = in_string {
            if c == q {
                in_string = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' | b'\'' => in_string = Some(c),
            b'{' | b'[' => in_braces += 1,
            b'}' | b']' => in_braces -= 1,
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
                {
                    i += 1;
                }
                let word = &expr[start..i];
                let next = expr[i..].trim_start().chars().next();
                let is_call = next == Some('(');
                let after_by = expr[..start].trim_end().ends_with("by (")
                    || expr[..start].trim_end().ends_with("by(");
                let variable = start > 0 && bytes[start - 1] == b'$';
                if in_braces == 0 && !is_call && !after_by && !variable && word.contains('_') {
                    names.insert(word.to_string());
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    names
}

fn exprs_in_json(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if (k == "expr" || k == "query") && v.is_string() {
                    out.push(v.as_str().unwrap().to_string());
                } else {
                    exprs_in_json(v, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs_in_json(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn dashboard_and_alerts_use_only_metrics_the_worker_exports() {
    let rig = Harness::new("deploy").start().await;
    let text = rig.worker().scrape().await;
    rig.finish().await;
    let exported: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect();

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("deploy/grafana/dashboards/webhook-worker.json").unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    exprs_in_json(&dashboard, &mut exprs);
    let alerts = yaml("deploy/prometheus/alerts.yml");
    for group in alerts["groups"].as_vec().unwrap() {
        for rule in group["rules"].as_vec().unwrap() {
            exprs.push(rule["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(exprs.len() > 20, "found {} expressions", exprs.len());

    let mut used = BTreeSet::new();
    for e in &exprs {
        used.extend(metric_names(e));
    }
    for expected in [
        "webhook_attempts_total",
        "webhook_dropped_total",
        "webhook_retried_total",
        "webhook_attempt_duration_seconds_bucket",
        "webhook_broker_connected",
        "process_resident_memory_bytes",
        "rabbitmq_detailed_queue_messages_ready",
    ] {
        assert!(
            used.contains(expected),
            "{expected} not found among {used:?}"
        );
    }
    for name in &used {
        // Queue depths come from RabbitMQ's own exporter, `up` from Prometheus.
        if name.starts_with("rabbitmq_") || name == "up" {
            continue;
        }
        assert!(
            exported.contains(name),
            "{name} is used by a dashboard or alert but not exported by the worker"
        );
    }
}

#[test]
fn the_name_extractor_finds_metrics_not_functions_or_labels() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le, webhook) (rate(webhook_attempt_duration_seconds_bucket{instance=~"$instance", outcome="a_b"}[$__rate_interval]))) or absent(webhook_broker_connected)"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "webhook_attempt_duration_seconds_bucket",
            "webhook_broker_connected"
        ]
    );
}

/// The sharded overlay's KEDA trigger, asked of the management API the way
/// KEDA's rabbitmq scaler asks with `useRegex` (`/api/queues/<vhost>?page=1&
/// use_regex=true&name=<expression>&page_size=100`, then the sum of
/// `messages_ready` with `excludeUnacknowledged`), counts every shard's
/// ready messages and not the parked ones.
#[tokio::test]
async fn the_sharded_keda_trigger_sums_the_ready_messages_of_every_shard() {
    let overlay =
        std::fs::read_to_string("deploy/kubernetes/overlays/sharded/kustomization.yaml").unwrap();
    let expression = overlay
        .lines()
        .find_map(|l| l.trim().strip_prefix("queueName: "))
        .expect("the trigger's queueName")
        .trim_matches('\'');
    assert!(expression.starts_with(r"^webhooks\."), "{expression}");
    let rig = Harness::new("keda-sum")
        .config(|c| c.topology.shards = 4)
        .declare()
        .await;
    // The test's prefix has no character special in an expression.
    let expression = expression.replacen("webhooks", rig.prefix(), 1);
    let events = (0..40u32).map(|i| {
        let body = event_with(
            &format!("k{i}"),
            104,
            "http://x/",
            "{}",
            &format!(r#""site_id":{}"#, i % 13),
        );
        ((i % 13).to_string(), body)
    });
    rig.broker.publish_many_keyed(events).await;
    let parked = event("parked", 104, "http://x/", "{}");
    for _ in 0..3 {
        rig.broker
            .publish_to(rig.broker.topology.dead(), &parked, Default::default())
            .await;
    }
    let path = format!(
        "queues/%2F?page=1&use_regex=true&pagination=false&name={}&page_size=100",
        urlencode(&expression)
    );
    let (names, ready) = wait_for(
        "the shards' ready messages in the management API",
        std::time::Duration::from_secs(60),
        async || {
            let page: serde_json::Value = management_json_polled(&path).await?;
            let items = page["items"].as_array()?;
            let ready: u64 = items
                .iter()
                .filter_map(|q| q["messages_ready"].as_u64())
                .sum();
            let mut names: Vec<String> = items
                .iter()
                .filter_map(|q| q["name"].as_str().map(str::to_string))
                .collect();
            names.sort();
            (ready == 40).then_some((names, ready))
        },
    )
    .await;
    assert_eq!(ready, 40);
    assert_eq!(
        names,
        rig.broker.topology.work_queues(),
        "every shard, nothing else"
    );
    rig.finish().await;
}
