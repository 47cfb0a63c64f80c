//! Byte sizes on the command line and in the config file: `16MiB`,
//! `10MB`, `4096` (units are not case-sensitive; `B` is always bytes).

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size(pub(crate) usize);

impl std::str::FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "{s:?} is not a size: give bytes, or a number with a unit (16MiB, 10MB, 512KiB)"
            )
        };
        let bytes = byte_unit::Byte::parse_str(s, true).map_err(|_| bad())?;
        usize::try_from(bytes.as_u64()).map(Size).map_err(|_| bad())
    }
}

impl<'de> serde::Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(usize),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(Size(n)),
            Either::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Size;

    #[test]
    fn units_and_plain_numbers() {
        let p = |s: &str| s.parse::<Size>().map(|s| s.0);
        assert_eq!(p("4096"), Ok(4096));
        assert_eq!(p("16MiB"), Ok(16 << 20));
        assert_eq!(p("16mib"), Ok(16 << 20));
        assert_eq!(p("10MB"), Ok(10_000_000));
        assert_eq!(p("512 KiB"), Ok(512 << 10));
        assert!(p("lots").unwrap_err().contains("not a size"));
        assert!(p("-1").is_err());
    }
}
