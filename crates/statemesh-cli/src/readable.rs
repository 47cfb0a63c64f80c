//! `get` and `list` on every kind of map a node hosts: maps of JSON values,
//! maps changed by JSON events (`statemesh event`), and the byte maps
//! `statemesh bench` writes. All three answer the same queries; only the
//! types of keys and values differ, so the reading is written once.

use statemesh::collections::{MapAnswer, MapQuery, MapState};
use statemesh::hooks::Hooked;
use statemesh::{Client, ClientError, Consistency, Json, Queryable, Refusal, Remote, StateMachine};
use statemesh_cli::kinds::JsonEvents;

/// A map of any readable kind.
pub(crate) enum ReadableMap {
    Json(Remote<MapState<String, Json>>),
    Events(Remote<Hooked<JsonEvents>>),
    Bytes(Remote<MapState<Vec<u8>, Vec<u8>>>),
}

impl ReadableMap {
    /// The existing map `name`, whichever of the kinds it is.
    pub(crate) async fn open(
        client: &Client,
        name: &str,
        consistency: Consistency,
    ) -> anyhow::Result<Self> {
        let events = Hooked::new(JsonEvents)?;
        let map = match client.open_existing::<MapState<String, Json>>(name).await {
            Ok(m) => Self::Json(m),
            Err(ClientError::Refused(Refusal::Mismatch { theirs, .. }))
                if theirs == events.signature() =>
            {
                Self::Events(client.open_existing_with(name, &events).await?)
            }
            Err(ClientError::Refused(Refusal::Mismatch { theirs, .. }))
                if theirs == MapState::<Vec<u8>, Vec<u8>>::default().signature() =>
            {
                Self::Bytes(client.open_existing(name).await?)
            }
            Err(e) => return Err(e.into()),
        };
        Ok(match map {
            Self::Json(m) => Self::Json(m.with_consistency(consistency)),
            Self::Events(m) => Self::Events(m.with_consistency(consistency)),
            Self::Bytes(m) => Self::Bytes(m.with_consistency(consistency)),
        })
    }

    /// The value at `key`, as JSON text.
    pub(crate) async fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        Ok(match self {
            Self::Json(m) => get(m, key.to_owned()).await?.map(|v| v.to_string()),
            Self::Events(m) => get(m, key.to_owned()).await?.map(|v| v.to_string()),
            Self::Bytes(m) => get(m, key.as_bytes().to_vec()).await?.map(|v| bytes(&v)),
        })
    }

    /// Every entry in key order: the key, and the value as JSON text.
    pub(crate) async fn list(&self) -> anyhow::Result<Vec<(String, String)>> {
        Ok(match self {
            Self::Json(m) => all(m, |k: String, v: Json| (k, v.to_string())).await?,
            Self::Events(m) => all(m, |k: String, v: Json| (k, v.to_string())).await?,
            Self::Bytes(m) => {
                all(m, |k: Vec<u8>, v: Vec<u8>| {
                    (String::from_utf8_lossy(&k).into_owned(), bytes(&v))
                })
                .await?
            }
        })
    }
}

/// Bytes as a JSON string (lossily, for display).
fn bytes(v: &[u8]) -> String {
    serde_json::Value::String(String::from_utf8_lossy(v).into_owned()).to_string()
}

async fn get<K, V, SM>(map: &Remote<SM>, key: K) -> Result<Option<V>, ClientError>
where
    SM: Queryable<Query = MapQuery<K>, Answer = MapAnswer<K, V>>,
{
    match map.query(MapQuery::Get(key)).await?.0 {
        MapAnswer::Value(v) => Ok(v),
        _ => Err(ClientError::Decode("not an answer to get".into())),
    }
}

async fn all<K: Clone, V, SM>(
    map: &Remote<SM>,
    show: impl Fn(K, V) -> (String, String),
) -> Result<Vec<(String, String)>, ClientError>
where
    SM: Queryable<Query = MapQuery<K>, Answer = MapAnswer<K, V>>,
{
    const PAGE: usize = 1024;
    let mut out = Vec::new();
    let mut after: Option<K> = None;
    loop {
        let query = MapQuery::Entries {
            after: after.take(),
            limit: PAGE,
        };
        let MapAnswer::Entries(page) = map.query(query).await?.0 else {
            return Err(ClientError::Decode("not an answer to entries".into()));
        };
        let done = page.len() < PAGE;
        after = page.last().map(|(k, _)| k.clone());
        out.extend(page.into_iter().map(|(k, v)| show(k, v)));
        if done {
            return Ok(out);
        }
    }
}
