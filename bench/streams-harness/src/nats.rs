//! NATS core pub/sub: one client connection per producer and per
//! consumer, each consumer subscribed to the subject; the client's and
//! the server's default limits (a subscription buffers 65,536 messages in
//! the client, then drops and reports a slow consumer; the server drops a
//! connection whose pending bytes pass its limit, and the client
//! reconnects and subscribes again).

use crate::setup::{Consumers, Publisher, SUBJECT};
use crate::tally;
use futures_util::StreamExt;

async fn connect(url: &str, t: Option<tally::Shared>) -> Result<async_nats::Client, String> {
    let options = async_nats::ConnectOptions::new().event_callback(move |event| {
        let t = t.clone();
        async move {
            if let (Some(t), async_nats::Event::Disconnected | async_nats::Event::SlowConsumer(_)) =
                (&t, event)
            {
                tally::lock(t).interruptions += 1;
            }
        }
    });
    options.connect(url).await.map_err(|e| e.to_string())
}

pub async fn publishers(url: &str, count: usize) -> Result<Vec<Publisher>, String> {
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(Publisher::Nats(connect(url, None).await?));
    }
    Ok(out)
}

pub async fn consumers(url: &str, producers: usize, count: usize) -> Result<Consumers, String> {
    let mut out = Consumers::default();
    for _ in 0..count {
        let t = tally::shared(producers);
        let client = connect(url, Some(t.clone())).await?;
        let mut subscriber = client.subscribe(SUBJECT).await.map_err(|e| e.to_string())?;
        // The server has the subscription once it answers a ping sent
        // after it.
        client.flush().await.map_err(|e| e.to_string())?;
        out.keep.push(Box::new(client));
        out.tallies.push(t.clone());
        out.tasks.push(tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                tally::lock(&t).record(&message.payload);
            }
        }));
    }
    Ok(out)
}
