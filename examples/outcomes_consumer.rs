//! A platform's consumer of outcome events (docs/operations.md, "Outcome
//! events and the delivery log"): binds its own durable queue to
//! `P.outcomes` for what it cares about — here failing and recovering
//! receivers and failed attempts — and prints each event.
//!
//! ```text
//! cargo run --example outcomes_consumer -- [PREFIX] [BINDING...]
//! cargo run --example outcomes_consumer -- webhooks 'receiver.*' attempt.failed
//! ```
//!
//! Each AMQP message holds one or more events of one kind (its routing
//! key), one JSON object per line. Acked after handling: a crash before
//! the ack gets the message again (handle duplicates by `id` + `attempt`).

use futures_lite::StreamExt;
use lapin::{
    Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions,
        QueueDeclareOptions,
    },
    types::FieldTable,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let prefix = args.next().unwrap_or_else(|| "webhooks".into());
    let mut bindings: Vec<String> = args.collect();
    if bindings.is_empty() {
        bindings = vec!["receiver.*".into(), "attempt.failed".into()];
    }
    let url = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let exchange = format!("{prefix}.outcomes");
    let queue = format!("{prefix}.platform-example");
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await?;
    for key in &bindings {
        ch.queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    ch.basic_qos(100, BasicQosOptions::default()).await?;
    let mut consumer = ch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    eprintln!("consuming {queue} (bound to {exchange} with {bindings:?})");
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let kind = delivery.routing_key.as_str();
        for line in String::from_utf8_lossy(&delivery.data).lines() {
            let event: serde_json::Value = serde_json::from_str(line)?;
            match kind {
                "receiver.failing" => {
                    println!("ALERT {} failing: {}", event["receiver"], event["error"])
                }
                "receiver.recovered" => println!("OK    {} recovered", event["receiver"]),
                _ => println!(
                    "{kind} {} attempt {} -> {}",
                    event["id"], event["attempt"], event["next"]
                ),
            }
        }
        delivery.ack(BasicAckOptions::default()).await?;
    }
    Ok(())
}
