//! Redis pub/sub: one connection per producer (PUBLISH, pipelined) and
//! one per consumer (SUBSCRIBE); the server's default limits (a
//! subscriber whose output buffer passes 32 MiB, or 8 MiB for 60 s, is
//! disconnected: it subscribes again at once and counts an
//! interruption).

use crate::setup::{Consumers, Publisher, SUBJECT};
use crate::tally;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

async fn subscriber(client: &redis::Client) -> Result<redis::aio::PubSub, String> {
    let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
    pubsub.subscribe(SUBJECT).await.map_err(|e| e.to_string())?;
    Ok(pubsub)
}

pub async fn publishers(url: &str, count: usize) -> Result<Vec<Publisher>, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for _ in 0..count {
        let connection = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        out.push(Publisher::redis(connection));
    }
    Ok(out)
}

/// Waits until the server counts `consumers` subscribers.
pub async fn subscribed(url: &str, consumers: usize) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counts: Vec<(String, usize)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(SUBJECT)
            .query_async(&mut admin)
            .await
            .map_err(|e| e.to_string())?;
        if counts.first().map(|c| c.1) == Some(consumers) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("redis: subscribers {counts:?}, not {consumers}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn consumers(url: &str, producers: usize, count: usize) -> Result<Consumers, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut out = Consumers::default();
    for _ in 0..count {
        let t = tally::shared(producers);
        let mut pubsub = subscriber(&client).await?;
        out.tallies.push(t.clone());
        let client = client.clone();
        out.tasks.push(tokio::spawn(async move {
            loop {
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    tally::lock(&t).record(message.get_payload_bytes());
                }
                tally::lock(&t).interruptions += 1;
                pubsub = loop {
                    match subscriber(&client).await {
                        Ok(p) => break p,
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                };
            }
        }));
    }
    Ok(out)
}
