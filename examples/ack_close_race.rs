//! Reproduces rabbitmq-server#10327 against a real broker: a quorum queue
//! ignores some acks sent just before their channel is closed, and puts
//! those messages back in the queue, so they are delivered again although
//! the consumer settled them. This is why a consumer channel lingers
//! before it closes (`worker::lane::ACK_LINGER`): the results
//! are in `bench/results/2026-12-02-ack-close-race.md`.
//!
//! ```sh
//! cargo run --release --example ack_close_race -- ITERATIONS MESSAGES LINGER_MS [quorum|classic]
//! ```
//!
//! Each iteration declares a fresh queue, publishes MESSAGES with confirms,
//! consumes them all on a new channel, cancels the consumer (as a retired
//! lane does), acks each delivery singly, waits LINGER_MS, closes the
//! channel, and then counts the messages back in the queue: every one of
//! them was acked. Needs AMQP_URL or the local broker (guest@127.0.0.1).
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::time::Duration;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// How long after the close the queue is watched for messages coming back.
const SETTLE: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| -> Result<u64> {
        Ok(args
            .get(i)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let iterations = number(0, 100)?;
    let messages = u16::try_from(number(1, 300)?)?;
    let linger = Duration::from_millis(number(2, 0)?);
    let queue_type = args.get(3).map_or("quorum", String::as_str);
    let url = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let connection = Connection::connect(&url, ConnectionProperties::default()).await?;
    let control = connection.create_channel().await?;
    control
        .confirm_select(ConfirmSelectOptions::default())
        .await?;

    let (mut affected, mut requeued) = (0u64, 0u64);
    for iteration in 0..iterations {
        let queue = format!("ack-close-race-{}-{iteration}", std::process::id());
        let back = one_iteration(&connection, &control, &queue, queue_type, messages, linger).await;
        control
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await?;
        let back = back?;
        if back > 0 {
            affected += 1;
            requeued += u64::from(back);
        }
    }
    println!(
        "{{\"queue_type\":\"{queue_type}\",\"messages\":{messages},\"linger_ms\":{},\"iterations\":{iterations},\"iterations_with_acked_messages_requeued\":{affected},\"acked_messages_requeued\":{requeued}}}",
        linger.as_millis()
    );
    Ok(())
}

/// Returns how many acked messages came back to the queue.
async fn one_iteration(
    connection: &Connection,
    control: &Channel,
    queue: &str,
    queue_type: &str,
    messages: u16,
    linger: Duration,
) -> Result<u32> {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(queue_type.into()),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    control
        .queue_declare(queue.into(), durable, arguments)
        .await?;
    for i in 0..messages {
        control
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                i.to_string().as_bytes(),
                BasicProperties::default(),
            )
            .await?
            .await?;
    }
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(messages, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut tags = Vec::with_capacity(usize::from(messages));
    while tags.len() < usize::from(messages) {
        let delivery = consumer.next().await.ok_or("consumer ended")??;
        tags.push(delivery.delivery_tag);
    }
    channel
        .basic_cancel(
            consumer.tag().as_str().into(),
            BasicCancelOptions::default(),
        )
        .await?;
    for tag in tags {
        channel
            .basic_ack(tag, BasicAckOptions { multiple: false })
            .await?;
    }
    tokio::time::sleep(linger).await;
    channel.close(200, "done".into()).await?;
    tokio::time::sleep(SETTLE).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let state = control
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await?;
    Ok(state.message_count())
}
