//! Pushes as they travel: small deliveries joined into one
//! [`Delivery::Batch`] by the producer ([`batched`]), and taken apart by
//! the consumer without copying ([`unbatched`]).

use super::outlet::Delivery;
use super::ring::Missed;
use bytes::Bytes;
use serde::Deserialize;

/// Deliveries larger than this are pushed alone (see [`batched`]).
pub const BATCH_ALONE: usize = 512;

/// The encoded deliveries `deliveries` as pushes: runs of small ones
/// joined into a [`Delivery::Batch`] of at most `max_bytes`. A delivery
/// over [`BATCH_ALONE`] bytes goes alone: the ring's copy is shared by
/// every consumer, and copying it into each one's batch costs more than
/// the frame it saves.
#[must_use]
pub fn batched(deliveries: Vec<Bytes>, max_bytes: usize) -> Vec<Bytes> {
    if deliveries.len() < 2 {
        return deliveries;
    }
    let mut out = Vec::new();
    let mut run: Vec<Bytes> = Vec::new();
    let mut bytes = 0;
    let flush = |run: &mut Vec<Bytes>, out: &mut Vec<Bytes>| match run.len() {
        0 => {}
        1 => out.extend(run.pop()),
        _ => out.push(Bytes::from(
            // Byte strings always encode.
            postcard::to_allocvec(&Delivery::Batch(std::mem::take(run))).unwrap_or_default(),
        )),
    };
    for d in deliveries {
        if d.len() > BATCH_ALONE {
            flush(&mut run, &mut out);
            bytes = 0;
            out.push(d);
            continue;
        }
        if bytes + d.len() > max_bytes {
            flush(&mut run, &mut out);
            bytes = 0;
        }
        bytes += d.len() + 4;
        run.push(d);
    }
    flush(&mut run, &mut out);
    out
}

/// [`Delivery`] as decoded in place: byte strings borrowed from the push.
/// The variants are [`Delivery`]'s, in its order (postcard numbers them).
#[derive(Deserialize)]
enum DeliveryRef<'a> {
    Opened { epoch: u64, next: u64, window: u32 },
    Item { seq: u64, payload: &'a [u8] },
    Lagged { missed: Missed, next: u64 },
    Progress { next: u64 },
    Batch(Vec<&'a [u8]>),
}

fn decode(bytes: &[u8]) -> Result<DeliveryRef<'_>, String> {
    statemesh_core::decode::from_bytes(bytes).map_err(|e| e.to_string())
}

/// The deliveries in one push, in order: a batch's, or the push itself.
/// Items' payloads are slices of `push`, not copies.
///
/// # Errors
///
/// The push, or a delivery in it, does not decode, or a batch holds a
/// batch.
pub fn unbatched(push: &Bytes) -> Result<Vec<Delivery>, String> {
    let owned = |delivery: DeliveryRef<'_>| match delivery {
        DeliveryRef::Opened {
            epoch,
            next,
            window,
        } => Ok(Delivery::Opened {
            epoch,
            next,
            window,
        }),
        DeliveryRef::Item { seq, payload } => Ok(Delivery::Item {
            seq,
            payload: push.slice_ref(payload),
        }),
        DeliveryRef::Lagged { missed, next } => Ok(Delivery::Lagged { missed, next }),
        DeliveryRef::Progress { next } => Ok(Delivery::Progress { next }),
        DeliveryRef::Batch(_) => Err("a batch inside a batch".to_owned()),
    };
    match decode(push)? {
        DeliveryRef::Batch(inner) => inner.into_iter().map(|d| owned(decode(d)?)).collect(),
        one => owned(one).map(|d| vec![d]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_the_order_and_leave_large_deliveries_alone() {
        let sizes = [10, 20, 600, 30, 40, 50, 5000, 1, 2, 3];
        let deliveries: Vec<Bytes> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Bytes::from(vec![u8::try_from(i).unwrap(); n]))
            .collect();
        let pushes = batched(deliveries.clone(), 100);
        let mut back = Vec::new();
        for push in &pushes {
            match postcard::from_bytes::<Delivery>(push) {
                Ok(Delivery::Batch(inner)) => {
                    assert!(inner.len() > 1 && push.len() <= 100 + 8, "{}", push.len());
                    back.extend(inner);
                }
                // Not a batch: one delivery as it was.
                _ => back.push(push.clone()),
            }
        }
        assert_eq!(back, deliveries, "every delivery, once, in order");
        assert!(pushes.contains(&deliveries[2]) && pushes.contains(&deliveries[6]));
        assert!(pushes.len() < deliveries.len());
    }
    #[test]
    fn a_push_comes_apart_into_its_deliveries_sharing_its_bytes() {
        let encode = |d: &Delivery| Bytes::from(postcard::to_allocvec(d).unwrap());
        let deliveries = vec![
            Delivery::Opened {
                epoch: 3,
                next: 1,
                window: 64,
            },
            Delivery::Item {
                seq: 1,
                payload: Bytes::from_static(b"one"),
            },
            Delivery::Lagged {
                missed: Missed::Exactly(4),
                next: 6,
            },
            Delivery::Progress { next: 9 },
            Delivery::Item {
                seq: 9,
                payload: Bytes::from_static(b"nine"),
            },
        ];
        let pushes = batched(deliveries.iter().map(encode).collect(), 1 << 16);
        assert_eq!(pushes.len(), 1, "small ones travel together");
        let back = unbatched(&pushes[0]).unwrap();
        assert_eq!(back, deliveries);
        let Delivery::Item { payload, .. } = &back[1] else {
            panic!()
        };
        let within = pushes[0].as_ptr_range();
        assert!(
            within.contains(&payload.as_ptr()),
            "a slice of the push, not a copy"
        );
        // One delivery alone is its own push.
        assert_eq!(
            unbatched(&encode(&deliveries[3])).unwrap(),
            vec![deliveries[3].clone()]
        );
        // A batch in a batch, and bytes that are not a delivery, are refused.
        let nested = encode(&Delivery::Batch(vec![pushes[0].clone()]));
        assert!(unbatched(&nested).is_err());
        assert!(unbatched(&Bytes::from_static(&[200, 1, 2])).is_err());
    }
}
