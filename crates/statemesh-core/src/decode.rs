//! Decoding bytes from elsewhere (a peer, a file) without trusting the
//! lengths they announce.
//!
//! postcard hands a map's announced length to the type as a size hint
//! unchecked (for sequences it checks it against the bytes left), and
//! `imbl`'s maps reserve that many entries before reading one: an
//! `OrdMap` whose length is edited to 2^42 made a mirror loading its file
//! abort on a 5 TB allocation (found by `statemesh-client`'s
//! `fuzz_mirror_file`). [`from_bytes`] decodes as `postcard::from_bytes`
//! does, through an adapter that caps every size hint, so a length costs
//! memory only as the entries it announces are actually read.

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// The largest size hint a decoded type sees: enough that real
/// collections reserve in few steps, small enough that reserving it for
/// any element type is harmless.
const MAX_HINT: usize = 4096;

/// Decodes `bytes` as `postcard::from_bytes` does (trailing bytes are
/// ignored), with every size hint capped.
///
/// # Errors
///
/// As `postcard::from_bytes`.
pub fn from_bytes<'a, T: de::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, postcard::Error> {
    let mut de = postcard::Deserializer::from_bytes(bytes);
    T::deserialize(Bounded(&mut de))
}

/// A deserializer, visitor, access or seed whose size hints are capped.
struct Bounded<T>(T);

fn cap(hint: Option<usize>) -> Option<usize> {
    hint.map(|n| n.min(MAX_HINT))
}

macro_rules! forward_deserialize {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                self.0.$method(Bounded(visitor))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Bounded<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16
        deserialize_i32 deserialize_i64 deserialize_i128 deserialize_u8
        deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Bounded(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Bounded(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Bounded(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, Bounded(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct(name, fields, Bounded(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Bounded(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.0.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Bounded<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.expecting(f)
    }

    forward_visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32)
        visit_i64(i64) visit_i128(i128) visit_u8(u8) visit_u16(u16)
        visit_u32(u32) visit_u64(u64) visit_u128(u128) visit_f32(f32)
        visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(Bounded(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(Bounded(d))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Bounded(seq))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Bounded(map))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(Bounded(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Bounded<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Bounded(d))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Bounded<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Bounded(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        cap(self.0.size_hint())
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Bounded<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Bounded(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(Bounded(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        cap(self.0.size_hint())
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Bounded<A> {
    type Error = A::Error;
    type Variant = Bounded<A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(Bounded(seed))?;
        Ok((value, Bounded(variant)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Bounded<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.0.newtype_variant_seed(Bounded(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Bounded(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Bounded(visitor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imbl::OrdMap;

    #[test]
    fn decodes_as_postcard_does() {
        let map: OrdMap<String, Vec<Option<(u8, String)>>> = (0..50)
            .map(|i| {
                (
                    format!("k{i}"),
                    vec![None, Some((i, "v".repeat(i as usize)))],
                )
            })
            .collect();
        let bytes = postcard::to_allocvec(&map).unwrap();
        assert_eq!(from_bytes::<OrdMap<_, _>>(&bytes).unwrap(), map);
        let value = serde_json::json!({"a": [1, 2.5, null, "x"], "b": {"c": true}});
        let bytes = postcard::to_allocvec(&crate::collections::Json(value.clone())).unwrap();
        let back: crate::collections::Json = from_bytes(&bytes).unwrap();
        assert_eq!(back.0, value);
    }

    /// Found by `statemesh-client`'s `fuzz_mirror_file`: a map whose
    /// length says 2^42 entries, with none behind it.
    #[test]
    fn a_huge_map_length_reserves_nothing() {
        let mut bytes = Vec::new();
        let mut n: u64 = 1 << 42;
        while n >= 0x80 {
            bytes.push((n as u8) | 0x80);
            n >>= 7;
        }
        bytes.push(n as u8);
        assert!(from_bytes::<OrdMap<String, u64>>(&bytes).is_err());
        assert!(from_bytes::<imbl::HashMap<u64, u64>>(&bytes).is_err());
    }
}
