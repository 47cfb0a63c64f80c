//! An item encoded once, in the buffer its delivery is sent from.

use bytes::Bytes;
use serde::Serialize;

/// Room before an item's bytes for the rest of its delivery: the
/// variant, the sequence number and the length (postcard varints).
const HEADROOM: usize = 1 + 10 + 10;

/// An item's encoding with room in front for the rest of its
/// [`Delivery::Item`](super::Delivery::Item), so publishing it costs no second allocation or
/// copy: at 64-byte items a producer spent half its time in the
/// allocator, encoding the item, then the delivery around a copy of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    buf: Vec<u8>,
}

impl Encoded {
    /// Encodes `item`, expecting about `size_hint` bytes.
    ///
    /// # Errors
    ///
    /// What postcard says of an item it cannot encode.
    pub fn new<T: Serialize + ?Sized>(item: &T, size_hint: usize) -> Result<Self, postcard::Error> {
        Ok(Self {
            buf: postcard::to_extend(item, headroom(size_hint))?,
        })
    }

    /// An item whose encoding is `value`.
    #[must_use]
    pub fn from_value(value: &[u8]) -> Self {
        let mut buf = headroom(value.len());
        buf.extend_from_slice(value);
        Self { buf }
    }

    /// The item's encoding.
    #[must_use]
    pub fn value(&self) -> &[u8] {
        &self.buf[HEADROOM..]
    }

    /// Its length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.buf.len() - HEADROOM
    }

    /// Whether it encodes to nothing (a unit type).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoded [`Delivery::Item`](super::Delivery::Item) of this item as number `seq`.
    #[must_use]
    pub fn into_delivery(mut self, seq: u64) -> Bytes {
        // The variant's index and the fields before the payload, which
        // postcard writes as varints as it would for the whole delivery
        // (a test holds the two equal).
        let mut header = [0u8; HEADROOM];
        let len = self.len();
        let header = postcard::to_slice(&(ITEM_VARIANT, seq, len), &mut header)
            .map(|h| &*h)
            .unwrap_or_default();
        let start = HEADROOM - header.len();
        self.buf[start..HEADROOM].copy_from_slice(header);
        Bytes::from(self.buf).slice(start..)
    }
}

/// A buffer holding only the headroom, with room for `len` bytes more.
fn headroom(len: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADROOM + len);
    buf.resize(HEADROOM, 0);
    buf
}

/// [`Delivery::Item`](super::Delivery::Item)'s index among the variants.
const ITEM_VARIANT: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Delivery;

    #[test]
    fn a_delivery_is_what_postcard_makes_of_the_whole() {
        for seq in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            for len in [0, 1, 63, 64, 127, 128, 4096, 70_000] {
                let value: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                let whole = postcard::to_allocvec(&Delivery::Item {
                    seq,
                    payload: Bytes::from(value.clone()),
                })
                .unwrap();
                let ours = Encoded::from_value(&value).into_delivery(seq);
                assert_eq!(&ours[..], &whole[..], "seq {seq}, {len} bytes");
            }
        }
    }

    #[test]
    fn an_item_encodes_as_postcard_encodes_it() {
        let item = ("eu/1", 42u32, vec![1u8, 2, 3]);
        for hint in [0, 3, 1000] {
            let encoded = Encoded::new(&item, hint).unwrap();
            assert_eq!(encoded.value(), postcard::to_allocvec(&item).unwrap());
            assert_eq!(encoded.len(), encoded.value().len());
        }
    }
}
